package client

import (
	"errors"
	"fmt"

	"github.com/sngate/sngate/sn"
)

// Errors returned by Client methods. Test them with errors.Is.
var (
	// ErrNoResponse means the gateway did not answer a request within
	// RetryInterval after MaxRetries retransmissions.
	ErrNoResponse = errors.New("no response from gateway")
	// ErrRejected matches every *ReturnCodeError.
	ErrRejected = errors.New("rejected by gateway")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("closed")
	// ErrDisconnected means the gateway sent an unsolicited DISCONNECT.
	ErrDisconnected = errors.New("disconnected by gateway")
	// ErrGatewayLost means automatic keep-alive pings went unanswered; the
	// Client closes itself with this error.
	ErrGatewayLost = errors.New("gateway lost (keep-alive unanswered)")
	// ErrBadTopic means a TopicRef cannot be used for the operation.
	ErrBadTopic = errors.New("unusable topic")
	// ErrUnexpected means the gateway answered with a message that does
	// not fit the request.
	ErrUnexpected = errors.New("unexpected reply")
)

// ReturnCodeError reports a request the gateway answered with a return
// code other than sn.Accepted.
type ReturnCodeError struct {
	Op   string        // Op is the request, such as "connect" or "publish".
	Code sn.ReturnCode // Code is the gateway's return code.
}

// Error describes the rejection.
func (e *ReturnCodeError) Error() string {
	return fmt.Sprintf("client: %s: %s (0x%02x)", e.Op, e.Code, uint8(e.Code))
}

// Is reports whether target is ErrRejected.
func (e *ReturnCodeError) Is(target error) bool { return target == ErrRejected }

// checkRC turns a non-Accepted return code into a *ReturnCodeError.
func checkRC(op string, rc sn.ReturnCode) error {
	if rc == sn.Accepted {
		return nil
	}
	return &ReturnCodeError{Op: op, Code: rc}
}
