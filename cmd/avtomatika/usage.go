package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

const mainIntro = `avtomatika is the command line of the Avtomatika orchestrator. It talks to
the client API with a client token.

Usage:
  avtomatika [global flags] COMMAND [SUBCOMMAND] [flags] [arguments]
`

const globalHelp = `Global flags (before the command or among its flags):
  --url URL            orchestrator base URL (env ORCHESTRATOR_URL; default http://localhost:8080)
  --token TOKEN        client token (env CLIENT_TOKEN)
  --api-version V      client API version, the /api/V/... routes (default v1)
  --timeout D          limit of each HTTP request, e.g. 10s; 0 for none (default 30s)
  --json               print JSON on stdout instead of text
`

const exitHelp = `Exit status:
  0    success (for jobs watch and jobs create --watch: the job finished)
  1    error: network, server 5xx, unexpected response, or another API error
       (400 invalid request, 409 conflict, 413 too large, ...); also a job
       that has already ended, for jobs cancel and jobs approve alike
  2    usage error: unknown command, bad flags or arguments, no client token
  3    not found (404): no such job (or another client's), blueprint or route
  4    authentication or authorisation failure (401, 403)
  5    rate limited or quota exhausted (429)
  6    jobs watch, jobs create --watch: the job ended failed, cancelled,
       error or quarantined
  130  interrupted (SIGINT, SIGTERM)

Errors go to stderr with the server's message; results go to stdout.
`

func (a *app) printMainUsage(w io.Writer) error {
	var b strings.Builder
	b.WriteString(mainIntro)
	b.WriteString("\nCommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		if c.subs == nil {
			fmt.Fprintf(tw, "  %s\t%s\n", synopsis([]string{c.name}, c), c.summary)
			continue
		}
		for _, s := range c.subs {
			fmt.Fprintf(tw, "  %s\t%s\n", synopsis([]string{c.name, s.name}, s), s.summary)
		}
	}
	fmt.Fprintf(tw, "  help [COMMAND [SUBCOMMAND]]\tshow the usage of a command (or use -h)\n")
	_ = tw.Flush()
	b.WriteString("\n" + globalHelp + "\n" + exitHelp)
	_, err := io.WriteString(w, b.String())
	return err
}

func (a *app) printGroupUsage(w io.Writer, group *command) error {
	var b strings.Builder
	fmt.Fprintf(&b, "avtomatika %s: %s\n\nUsage:\n", group.name, group.summary)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, s := range group.subs {
		fmt.Fprintf(tw, "  avtomatika %s [flags]\t%s\n", synopsis([]string{group.name, s.name}, s), s.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "\nRun 'avtomatika help %s SUBCOMMAND' for the flags of each.\n", group.name)
	_, err := io.WriteString(w, b.String())
	return err
}

func (a *app) printLeafUsage(w io.Writer, cmd *command, path []string, fs *flag.FlagSet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: avtomatika %s [flags]\n\n", synopsis(path, cmd))
	if s := cmd.summary; s != "" {
		b.WriteString(strings.ToUpper(s[:1]) + s[1:] + ".\n")
	}
	if cmd.help != "" {
		b.WriteString("\n" + strings.TrimSpace(cmd.help) + "\n")
	}
	var flags strings.Builder
	tw := tabwriter.NewWriter(&flags, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if isGlobal(f.Name) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		if !isZeroDefault(f.DefValue) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, name, usage)
	})
	_ = tw.Flush()
	if flags.Len() > 0 {
		b.WriteString("\nFlags:\n" + flags.String())
	}
	b.WriteString("\n" + globalHelp + "\nRun 'avtomatika help' for the exit statuses.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// synopsis is "avtomatika jobs approve ID DECISION" without the program name.
func synopsis(path []string, cmd *command) string {
	s := strings.Join(path, " ")
	if cmd.args != "" {
		s += " " + cmd.args
	}
	return s
}

func isZeroDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// lineWidth is the width usage texts are wrapped to.
const lineWidth = 78

// wrapWords wraps text at spaces to lineWidth columns, given that its first
// line starts at column start.
func wrapWords(text string, start int) string {
	var b strings.Builder
	col := start
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case col+1+len(w) > lineWidth:
			b.WriteString("\n")
			col = 0
		default:
			b.WriteString(" ")
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}
