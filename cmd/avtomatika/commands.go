package main

import (
	"context"
	"flag"
)

// action runs a command with its positional arguments.
type action func(ctx context.Context, a *app, args []string) error

// command is a group of subcommands (subs set) or a runnable command
// (setup set).
type command struct {
	name    string
	args    string // synopsis of the positional arguments, e.g. "ID DECISION"
	summary string // one line for the command list
	help    string // paragraphs for the command's own usage text

	minArgs, maxArgs int

	// setup declares the command's flags on fs and returns the action that
	// reads them.
	setup func(fs *flag.FlagSet) action
	subs  []*command
}

// commands returns the command tree.
func commands() []*command {
	return []*command{
		{name: "jobs", summary: "create, follow, cancel, approve, retry and list jobs", subs: []*command{
			jobsCreate(), jobsGet(), jobsWatch(), jobsCancel(), jobsApprove(), jobsRetry(), jobsList(),
		}},
		{name: "workers", summary: "list registered workers", subs: []*command{workersList()}},
		{name: "blueprints", summary: "list blueprints and draw their state graphs", subs: []*command{
			blueprintsList(), blueprintsGraph(),
		}},
		versionCommand(),
	}
}

func find(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	return nil
}

func names(cmds []*command) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.name
	}
	return out
}
