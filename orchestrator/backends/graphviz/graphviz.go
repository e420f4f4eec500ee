// Package graphviz links Graphviz (compiled to WebAssembly, package
// internal/graphsvg) into the orchestrator: import it for its side effect
// and the console's job page draws the blueprint's graph as SVG, with the
// path the job took and its current state highlighted. Without it the page
// lists the states instead.
//
//	import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/graphviz"
//
// It costs the program about 9 MB, and each start of the process compiles
// Graphviz's WebAssembly module: about 0.75 s of CPU the first time, 0.1 s
// once wazero's cache in $TMPDIR/go-graphviz holds it.
package graphviz

import (
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
	"github.com/avtomatika-ai/avtomatika-go/internal/graphsvg"
)

func init() { backend.Register(backend.Graphviz, backend.Backend{RenderSVG: graphsvg.Render}) }
