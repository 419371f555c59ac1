package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxCacheEntries bounds the decision cache. Distinct inputs are few in practice (Pods of one
// template share everything policies read), so the bound only matters under abuse.
const maxCacheEntries = 4096

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
	if c.gen != gen || c.entries == nil || c.size >= maxCacheEntries {
		c.gen = gen
		c.entries = make(map[int][]cacheEntry)
		c.size = 0
	}
	h := key.Hash()
	c.entries[h] = append(c.entries[h], cacheEntry{key: key, decision: d})
	c.size++
}
