package main

import "flag"

// flagSetOf collects flags registered on a standard library FlagSet (zap's logging flags).
func flagSetOf(bind func(*flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	bind(fs)
	return fs
}
