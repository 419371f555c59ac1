package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path"
	"sort"
)

// Hash identifies the set's content: its modules (by file name and parsed text, so comments
// and formatting do not count) and its data. The directories they were loaded from do not
// count, so replicas that mount the same ConfigMap anywhere report the same hash
// (runtimeguard_policy_generation{hash}). 16 hex digits: enough to tell sets apart.
func (s *Set) Hash() string {
	names := make([]string, 0, len(s.Modules))
	for name := range s.Modules {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		bi, bj := path.Base(names[i]), path.Base(names[j])
		if bi != bj {
			return bi < bj
		}
		return names[i] < names[j]
	})
	h := sha256.New()
	for _, name := range names {
		h.Write([]byte(path.Base(name)))
		h.Write([]byte{0})
		h.Write([]byte(s.Modules[name].String()))
		h.Write([]byte{0})
	}
	// encoding/json sorts map keys: the same data always gives the same bytes.
	data, err := json.Marshal(s.Data)
	if err != nil {
		data = []byte(err.Error())
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
