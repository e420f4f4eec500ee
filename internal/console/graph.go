package console

import (
	"context"
	"crypto/sha256"
	"html/template"
	"regexp"
	"sync"
)

// The job page's blueprint graph: the blueprint's DOT source with the
// job's path marked (blueprint.DOTPath), laid out as SVG by
// Options.RenderSVG and put inline in the page, where console.css styles
// it (light or dark) through the classes Graphviz carries over: "current",
// "visited" and "taken".

// preamble is what precedes the <svg> element in Graphviz's output: the
// XML declaration, the doctype and comments.
var preamble = regexp.MustCompile(`(?s)\A.*?(<svg\b)`)

// comment matches an XML comment (Graphviz writes one per node and edge).
var comment = regexp.MustCompile(`(?s)<!--.*?-->\n?`)

// inlineSVG turns a rendered SVG document into an element to put inside
// an HTML page: without the XML preamble and comments. Its natural size
// stays; console.css shrinks it to narrow screens (the viewBox keeps its
// proportions).
func inlineSVG(svg []byte) []byte {
	out := preamble.ReplaceAll(svg, []byte("$1"))
	return comment.ReplaceAll(out, nil)
}

// graphCacheMax bounds the graphs kept: a job page reloads on every change
// of its job, and jobs of one blueprint share few distinct paths.
const graphCacheMax = 512

// graphs renders and keeps the SVG of DOT sources.
type graphs struct {
	render func(ctx context.Context, dot string) ([]byte, error)
	mu     sync.Mutex
	cache  map[[32]byte]template.HTML
}

// svg returns the inline SVG of dot. The SVG comes from Graphviz, which
// escapes the labels it writes; the DOT source comes from the blueprints.
func (g *graphs) svg(ctx context.Context, dot string) (template.HTML, error) {
	key := sha256.Sum256([]byte(dot))
	g.mu.Lock()
	out, ok := g.cache[key]
	g.mu.Unlock()
	if ok {
		return out, nil
	}
	raw, err := g.render(ctx, dot)
	if err != nil {
		return "", err
	}
	out = template.HTML(inlineSVG(raw)) //nolint:gosec // Graphviz output of the server's own blueprints
	g.mu.Lock()
	if len(g.cache) >= graphCacheMax {
		clear(g.cache)
	}
	g.cache[key] = out
	g.mu.Unlock()
	return out, nil
}
