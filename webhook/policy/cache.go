package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxCacheEntries bounds the decision cache. Distinct inputs are few in practice (Pods of one
// template share everything policies read), so the bound only matters under abuse.
const maxCacheEntries = 1024

// maxCacheBytes bounds what the cached inputs weigh (see termWeight), and maxEntryBytes the
// weight of one cached input. The mutating webhook sees a Pod before the API server validates
// it, so one input may carry megabytes of annotations: without these bounds maxCacheEntries
// distinct such Pods would keep gigabytes alive. An input heavier than maxEntryBytes is
// decided, not cached.
const (
	maxCacheBytes = 8 << 20
	maxEntryBytes = 256 << 10
)

// termWeight estimates the memory an input term keeps alive: its strings plus a fixed cost
// per term for the term, its value and its place in an object or array.
func termWeight(t *ast.Term) int {
	w := 0
	ast.WalkTerms(t, func(t *ast.Term) bool {
		w += 96
		if s, ok := t.Value.(ast.String); ok {
			w += len(s)
		}
		return false
	})
	return w
}

type generation struct {
	policy  uint64
	cluster uint64
}

type cacheEntry struct {
	key      *ast.Term
	decision *Decision
}

// decisionCache maps an input (everything except the cluster part) to its decision. It is
// valid for one policy generation and one cluster generation: when either moves, the next
// lookup starts an empty cache, so a change is seen by the very next decision.
type decisionCache struct {
	mu      sync.RWMutex
	gen     generation
	entries map[int][]cacheEntry
	size    int
	// bytes is the summed termWeight of the cached keys.
	bytes int
}

func (c *decisionCache) get(gen generation, key *ast.Term) *Decision {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != gen {
		return nil
	}
	for _, e := range c.entries[key.Hash()] {
		if e.key.Equal(key) {
			return e.decision
		}
	}
	return nil
}

func (c *decisionCache) put(gen generation, key *ast.Term, d *Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen && (gen.policy < c.gen.policy || gen.cluster < c.gen.cluster) {
		return // a slow evaluation of an older generation must not roll the cache back
	}
	w := termWeight(key)
	if w > maxEntryBytes {
		return
	}
	if c.gen != gen || c.entries == nil || c.size >= maxCacheEntries || c.bytes+w > maxCacheBytes {
		c.gen = gen
		c.entries = make(map[int][]cacheEntry)
		c.size = 0
		c.bytes = 0
	}
	h := key.Hash()
	c.entries[h] = append(c.entries[h], cacheEntry{key: key, decision: d})
	c.size++
	c.bytes += w
}
