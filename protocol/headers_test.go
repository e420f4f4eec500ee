package protocol_test

import (
	"net/http"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// The header names are spelled canonically: http.Header's Set and Get
// copy a name that is not, on every request.
func TestHeaderNamesAreCanonical(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		protocol.HeaderWorkerToken, protocol.HeaderWorkerID, protocol.HeaderVersion, protocol.HeaderClientToken,
		protocol.HeaderAdminToken, protocol.HeaderIdempotencyKey, protocol.HeaderIdempotentReplayed, protocol.HeaderWebhookSignature,
	} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("header %q is not canonical: spell it %q", name, c)
		}
	}
}
