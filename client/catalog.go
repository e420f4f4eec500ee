package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// Workers lists the registered workers.
func (c *Client) Workers(ctx context.Context) ([]protocol.WorkerInfo, error) {
	var out []protocol.WorkerInfo
	if err := c.call(ctx, request{method: http.MethodGet, path: c.apiPath("/workers")}, &out); err != nil {
		return nil, wrap("list workers", err)
	}
	return out, nil
}

// Blueprints lists the registered blueprints.
func (c *Client) Blueprints(ctx context.Context) ([]protocol.BlueprintInfo, error) {
	var out []protocol.BlueprintInfo
	if err := c.call(ctx, request{method: http.MethodGet, path: c.apiPath("/blueprints")}, &out); err != nil {
		return nil, wrap("list blueprints", err)
	}
	return out, nil
}

// Graph returns a blueprint's state graph as text: format "dot" (Graphviz,
// the server's default when format is "") or "mermaid".
func (c *Client) Graph(ctx context.Context, blueprint, format string) (string, error) {
	op := "graph of blueprint " + strconv.Quote(blueprint)
	seg, err := segment("blueprint name", blueprint)
	if err != nil {
		return "", wrap(op, err)
	}
	var q url.Values
	if format != "" {
		q = url.Values{"format": {format}}
	}
	resp, err := c.send(ctx, request{
		method: http.MethodGet,
		path:   c.apiPath("/blueprints/" + seg + "/graph"),
		query:  q,
		accept: "text/vnd.graphviz, text/plain;q=0.9, */*;q=0.1",
	})
	if err != nil {
		return "", wrap(op, err)
	}
	defer closeBody(resp.Body)
	b, err := readLimited(resp, maxResponseBody)
	if err != nil {
		return "", wrap(op, err)
	}
	return string(b), nil
}

// Ping checks that the orchestrator answers GET /_public/status with
// {"status":"ok"}. It sends no token.
func (c *Client) Ping(ctx context.Context) error {
	var out struct {
		Status string `json:"status"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: protocol.PublicStatus, public: true}, &out); err != nil {
		return wrap("ping", err)
	}
	if out.Status != "ok" {
		return wrap("ping", fmt.Errorf("server status %q", out.Status))
	}
	return nil
}
