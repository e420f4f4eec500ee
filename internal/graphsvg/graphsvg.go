// Package graphsvg renders Graphviz DOT source to SVG in process, with
// Graphviz compiled to WebAssembly (github.com/goccy/go-graphviz on the
// wazero runtime): no Graphviz installation and no cgo.
//
// Costs, measured on the CI machine (go-graphviz v0.2.10): the library
// compiles its WebAssembly module when the process starts (package init),
// about 0.75 s of CPU the first time and 0.1 s once wazero's compilation
// cache ($TMPDIR/go-graphviz) holds it; it adds about 9 MB to a binary and
// 20 MB of memory. Rendering a blueprint's graph takes about 1 ms.
package graphsvg

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/goccy/go-graphviz"
)

// turn serialises renders: go-graphviz runs one WebAssembly instance per
// process (created in its package init), which is not safe for concurrent
// use. It is a one-slot channel rather than a mutex so that a caller can
// give up waiting for it when its context ends.
//
// A render that has begun runs to its end: go-graphviz creates its wazero
// runtime without WithCloseOnContextDone, so the context passed in is not
// checked while WebAssembly code runs, and a render's time cannot be
// bounded from here (maxSource bounds its input).
var turn = make(chan struct{}, 1)

// maxSource bounds the DOT source one render takes.
const maxSource = 1 << 20

// Render lays out DOT source with Graphviz's dot layout and returns the
// SVG document.
func Render(ctx context.Context, dot string) ([]byte, error) {
	if len(dot) > maxSource {
		return nil, fmt.Errorf("graphsvg: the graph source is %d bytes, more than %d", len(dot), maxSource)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("graphsvg: wait for another render: %w", ctx.Err())
	}
	defer func() { <-turn }()
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("graphsvg: start graphviz: %w", err)
	}
	defer gv.Close()
	g, err := graphviz.ParseBytes([]byte(dot))
	if err != nil {
		return nil, fmt.Errorf("graphsvg: parse the graph: %w", err)
	}
	defer g.Close()
	var buf bytes.Buffer
	if err := gv.Render(ctx, g, graphviz.SVG, &buf); err != nil {
		return nil, fmt.Errorf("graphsvg: render: %w", err)
	}
	if buf.Len() == 0 {
		return nil, errors.New("graphsvg: graphviz rendered nothing")
	}
	return buf.Bytes(), nil
}
