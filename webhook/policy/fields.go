package policy

import "strings"

// Fields says which keys of data.runtimeguard.decision a caller reads. Admission reads only a
// few, and a policy that defines the decision key by key (decision.class := ..., as the
// default policy does) then has only the rules behind those keys evaluated: a cache miss on
// the mutating webhook skips the denials and warnings it would throw away.
type Fields uint8

const (
	FieldClass Fields = 1 << iota
	FieldAcceptable
	FieldDeny
	FieldWarn
	FieldReasons
	FieldTraits
	FieldRequirements
	FieldConflicts

	// AllFields is the whole decision: what a zero Request.Fields means.
	AllFields = FieldClass | FieldAcceptable | FieldDeny | FieldWarn | FieldReasons | FieldTraits | FieldRequirements | FieldConflicts
	// MutateFields is what the mutating webhook reads: the class it injects, and the reasons
	// for the audit annotation.
	MutateFields = FieldClass | FieldReasons
	// ValidateFields is what the validating webhook reads: the class and reasons as above, the
	// policy's verdict, and the selector conflicts that checkClass words.
	ValidateFields = FieldClass | FieldReasons | FieldDeny | FieldWarn | FieldConflicts
)

// fieldKeys are the decision's keys, in the order of the Field bits.
var fieldKeys = [...]string{"class", "acceptable", "deny", "warn", "reasons", "traits", "requirements", "conflicts"}

// orAll reads the zero value as the whole decision.
func (f Fields) orAll() Fields {
	if f == 0 {
		return AllFields
	}
	return f
}

// query is the Rego query for the keys f names. Each key is looked up on its own, so the
// evaluator descends only into the rules that define it; a policy that defines decision as one
// object is evaluated whole once (the evaluation caches it) and indexed. A key the decision
// lacks is left out, as parseDecision allows for every key but class. Even for AllFields this
// beats querying the decision itself when it is defined key by key: OPA then assembles the
// object through its partial-rule machinery (1,231 allocations a miss against 1,400).
func (f Fields) query() string {
	var keys []string
	for i, k := range fieldKeys {
		if f&(1<<i) != 0 {
			keys = append(keys, `"`+k+`"`)
		}
	}
	return "{k: v | some k in [" + strings.Join(keys, ", ") + "]; v := " + DecisionQuery + "[k]}"
}
