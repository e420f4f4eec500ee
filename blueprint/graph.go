package blueprint

import (
	"fmt"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

type edge struct {
	from, to, label string
	fanIn           bool
}

func (b *Blueprint) edges() []edge {
	var out []edge
	for _, name := range b.order {
		for _, h := range b.states[name].all() {
			when := ""
			if h.cond != "" {
				when = "when " + h.cond
			}
			for _, t := range h.to {
				out = append(out, edge{from: name, to: t, label: when})
			}
			for _, r := range h.on {
				out = append(out, edge{from: name, to: r.state, label: joinLabel(r.outcome, when)})
			}
			if h.fanIn != "" {
				out = append(out, edge{from: name, to: h.fanIn, label: joinLabel("fan-out / fan-in", when), fanIn: true})
			}
		}
	}
	return out
}

func joinLabel(a, b string) string {
	if b == "" {
		return a
	}
	return a + " (" + b + ")"
}

// notes describes what a state does beyond plain transitions.
func (b *Blueprint) notes(name string) []string {
	st := b.states[name]
	var notes []string
	switch st.kind {
	case kindAggregator:
		notes = append(notes, "aggregator")
	case kindEnd:
		notes = append(notes, "end: "+string(st.endStatus))
	}
	for _, h := range st.all() {
		if h.child != "" {
			notes = append(notes, "runs blueprint "+h.child)
		}
		if h.fanIn != "" {
			notes = append(notes, "parallel tasks")
		}
		if h.strategy != "" {
			notes = append(notes, "strategy "+string(h.strategy))
		}
	}
	return dedupe(notes)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// DOT renders the blueprint as a Graphviz digraph: one node per state (start
// marked by an arrow from a point, end states double-bordered and coloured by
// status), one edge per declared transition labelled with its outcome and
// condition, fan-out/fan-in edges in bold, and sub-blueprint calls noted on
// their state.
func (b *Blueprint) DOT() string { return b.dot(nil, "") }

// DOTPath is DOT with a job's way through the graph marked by classes,
// which Graphviz's SVG output carries on each node's and edge's element:
// "visited" on the states of path (the states the job entered, in order),
// "current" on the state current, and "taken" on the transitions between
// consecutive states of path (and the start arrow).
func (b *Blueprint) DOTPath(path []string, current string) string {
	return b.dot(path, current)
}

func (b *Blueprint) dot(path []string, current string) string {
	visited := map[string]bool{}
	taken := map[[2]string]bool{}
	for i, s := range path {
		visited[s] = true
		if i > 0 {
			taken[[2]string{path[i-1], s}] = true
		}
	}
	if len(path) > 0 {
		taken[[2]string{"__start__", path[0]}] = true
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "digraph %s {\n", dotQuote(b.name))
	fmt.Fprintf(&sb, "  label=%s;\n  labelloc=t;\n  rankdir=TB;\n  fontname=\"Helvetica\";\n", dotQuote("blueprint "+b.name))
	sb.WriteString("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n")
	sb.WriteString("  edge [fontname=\"Helvetica\", fontsize=10];\n")
	if b.start != "" {
		sb.WriteString("  \"__start__\" [shape=point, width=0.15];\n")
		fmt.Fprintf(&sb, "  \"__start__\" -> %s%s;\n", dotQuote(b.start), classAttr(taken[[2]string{"__start__", b.start}], "taken"))
	}
	for _, name := range b.order {
		label := name
		if n := b.notes(name); len(n) > 0 {
			label += "\n" + strings.Join(n, "\n")
		}
		attrs := []string{"label=" + dotQuote(label)}
		st := b.states[name]
		switch st.kind {
		case kindEnd:
			color := "darkgreen"
			if st.endStatus != protocol.StatusFinished {
				color = "firebrick"
			}
			attrs = append(attrs, "peripheries=2", "color="+color)
		case kindAggregator:
			attrs = append(attrs, "style=\"rounded,dashed\"")
		}
		switch {
		case name == current:
			attrs = append(attrs, `class="current"`)
		case visited[name]:
			attrs = append(attrs, `class="visited"`)
		}
		fmt.Fprintf(&sb, "  %s [%s];\n", dotQuote(name), strings.Join(attrs, ", "))
	}
	for _, e := range b.edges() {
		attrs := []string{}
		if e.label != "" {
			attrs = append(attrs, "label="+dotQuote(e.label))
		}
		if e.fanIn {
			attrs = append(attrs, "style=bold")
		}
		if taken[[2]string{e.from, e.to}] {
			attrs = append(attrs, `class="taken"`)
		}
		line := fmt.Sprintf("  %s -> %s", dotQuote(e.from), dotQuote(e.to))
		if len(attrs) > 0 {
			line += " [" + strings.Join(attrs, ", ") + "]"
		}
		sb.WriteString(line + ";\n")
	}
	sb.WriteString("}\n")
	return sb.String()
}

// classAttr is " [class=...]" when on, else "".
func classAttr(on bool, class string) string {
	if !on {
		return ""
	}
	return ` [class="` + class + `"]`
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Mermaid renders the blueprint as a Mermaid state diagram (stateDiagram-v2),
// which renders on GitHub and GitLab.
func (b *Blueprint) Mermaid() string {
	ids := map[string]string{}
	for i, name := range b.order {
		ids[name] = fmt.Sprintf("s%d", i)
	}
	var sb strings.Builder
	sb.WriteString("stateDiagram-v2\n")
	for _, name := range b.order {
		fmt.Fprintf(&sb, "    state \"%s\" as %s\n", name, ids[name])
	}
	if b.start != "" {
		fmt.Fprintf(&sb, "    [*] --> %s\n", ids[b.start])
	}
	for _, e := range b.edges() {
		to, ok := ids[e.to]
		if !ok { // an undeclared target: show it anyway
			to = mermaidText(e.to)
		}
		line := fmt.Sprintf("    %s --> %s", ids[e.from], to)
		if e.label != "" {
			line += " : " + mermaidText(e.label)
		}
		sb.WriteString(line + "\n")
	}
	for _, name := range b.order {
		st := b.states[name]
		if st.kind == kindEnd {
			fmt.Fprintf(&sb, "    %s --> [*]\n", ids[name])
		}
		var notes []string
		for _, n := range b.notes(name) {
			if !strings.HasPrefix(n, "end: ") {
				notes = append(notes, n)
			}
		}
		if len(notes) > 0 {
			fmt.Fprintf(&sb, "    note right of %s : %s\n", ids[name], mermaidText(strings.Join(notes, ", ")))
		}
	}
	return sb.String()
}

// mermaidText keeps a label on one line and away from Mermaid's syntax.
func mermaidText(s string) string {
	r := strings.NewReplacer("\n", " ", ":", "#58;", ";", "#59;", "#", "#35;", "--", "#45;#45;")
	return r.Replace(s)
}
