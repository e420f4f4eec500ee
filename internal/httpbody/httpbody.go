// Package httpbody reads HTTP bodies: the server's requests, the clients'
// answers.
package httpbody

import "io"

// maxPresize bounds what Read allocates on Content-Length's word.
const maxPresize = 64 << 10

// Read reads r to its end, as io.ReadAll does, into a buffer sized for the
// size announced (Content-Length; -1 when unknown) up to maxPresize, then
// grown with what arrives: a peer that announces megabytes and sends a
// trickle costs a trickle. A body of the size announced takes one
// allocation of its size, where io.ReadAll starts at 512 bytes and grows
// (a few hundred bytes lost on every small answer, a copy on every larger
// request).
func Read(r io.Reader, size int64) ([]byte, error) {
	n := 512
	if size >= 0 && size < maxPresize {
		n = int(size) + 1 // room to read the end without growing
	}
	b := make([]byte, 0, n)
	for {
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grown as append grows it
		}
	}
}
