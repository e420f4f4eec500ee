package blueprint

import "github.com/avtomatika-ai/avtomatika-go/protocol"

var protocolError = protocol.TaskError{Code: protocol.ErrTransient, Message: "flaky"}
