package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// eachQueryPair decodes a query exactly as url.ParseQuery does: the same
// pairs in the same order, and an error for the same queries.
func FuzzEachQueryPair(f *testing.F) {
	for _, seed := range []string{
		"", "next=1", "a=1&b=2&a=3", "timeout=0.5&available_skills=a%2Cb", "a+b=c+d", "%zz=1", "a=%zz",
		"a=1;b=2", "&&a&=x&", "k=%E2%82%AC", "x=%", "=v",
		strings.Repeat("a=1&", 10000) + "next=1", strings.Repeat("&", 70),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want, wantErr := url.ParseQuery(raw)
		var names []string
		got := url.Values{}
		err := eachQueryPair(raw, func(name, value string) error {
			names = append(names, name)
			got[name] = append(got[name], value)
			return nil
		})
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("query %q: error %v, url.ParseQuery's %v", raw, err, wantErr)
		}
		if err != nil {
			return
		}
		for name, values := range want {
			if !slices.Equal(got[name], values) {
				t.Fatalf("query %q: %q is %q, url.ParseQuery's %q", raw, name, got[name], values)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("query %q: names %q, url.ParseQuery's %v", raw, names, want)
		}
		if v := want.Get("next"); v != "" {
			r := &http.Request{URL: &url.URL{RawQuery: raw}}
			if got := queryValue(r, "next"); got != v {
				t.Fatalf("query %q: queryValue next = %q, want %q", raw, got, v)
			}
		}
	})
}
