package policy

import "sync"

// maxCacheEntries bounds the decision cache. Distinct inputs are few in practice (Pods of one
// template share everything policies read), so the bound only matters under abuse.
const maxCacheEntries = 1024

// maxCacheBytes bounds what the cached keys weigh, and maxEntryBytes the weight of one key.
// The mutating webhook sees a Pod before the API server validates it, so one key may carry
// megabytes of annotations (when the policy reads them all): without these bounds
// maxCacheEntries distinct such Pods would keep gigabytes alive. A key heavier than
// maxEntryBytes is decided, not cached.
const (
	maxCacheBytes = 8 << 20
	maxEntryBytes = 256 << 10
)

// entryOverhead is what a cache entry costs besides its key: the map slot and the Decision.
const entryOverhead = 512

type generation struct {
	policy  uint64
	cluster uint64
}

// decisionCache maps an input key (cacheKey: everything of the input except the cluster part)
// to its decision. It is valid for one policy generation and one cluster generation: when
// either moves, the next lookup starts an empty cache, so a change is seen by the very next
// decision.
type decisionCache struct {
	mu      sync.RWMutex
	gen     generation
	entries map[string]*Decision
	// bytes is the summed weight of the cached entries.
	bytes int
}

func (c *decisionCache) get(gen generation, key []byte) *Decision {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen != gen {
		return nil
	}
	return c.entries[string(key)] // no allocation: the compiler keys the lookup by the bytes
}

func (c *decisionCache) put(gen generation, key []byte, d *Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen && (gen.policy < c.gen.policy || gen.cluster < c.gen.cluster) {
		return // a slow evaluation of an older generation must not roll the cache back
	}
	w := len(key) + entryOverhead
	if w > maxEntryBytes {
		return
	}
	if c.gen != gen || c.entries == nil || len(c.entries) >= maxCacheEntries || c.bytes+w > maxCacheBytes {
		c.gen = gen
		c.entries = make(map[string]*Decision)
		c.bytes = 0
	}
	c.entries[string(key)] = d
	c.bytes += w
}
