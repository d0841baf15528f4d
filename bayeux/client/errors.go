package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The errors of operations carry the package's prefix once, with the
// operation: "client: publish /chat/x: client closed". The sentinel errors
// below, which they wrap, have none.
var (
	// ErrClosed is returned by operations on a Client after Close, and by
	// operations that were waiting when Close was called.
	ErrClosed = errors.New("client closed")

	// ErrStopped is returned once the server has advised reconnect "none":
	// the client makes no further requests and should be closed.
	ErrStopped = errors.New("server advised not to reconnect")

	// ErrUnsubscribed is the Err of a Subscription ended by its Cancel
	// method.
	ErrUnsubscribed = errors.New("unsubscribed")
)

// ErrorCode is the three-digit code of a Bayeux error (Error.Code).
type ErrorCode int

// Bayeux error codes, as faye and CometD servers send them, and Bayou's own.
const (
	// CodeVersionMismatch means the server does not speak the protocol
	// version.
	CodeVersionMismatch ErrorCode = 300
	// CodeConnectionTypeMismatch means none of the client's connection
	// types is supported.
	CodeConnectionTypeMismatch ErrorCode = 301
	// CodeExtensionMismatch means an extension the server requires is
	// missing.
	CodeExtensionMismatch ErrorCode = 302
	// CodeBadRequest means the message is malformed, or (Bayou) that its
	// replay position is no longer retained.
	CodeBadRequest ErrorCode = 400
	// CodeUnknownClient means the server has no session with the client's
	// id (faye's "401:<id>:Unknown client"); server extensions also use
	// it to deny access.
	CodeUnknownClient ErrorCode = 401
	// CodeMissingParameter means a required field is missing (CometD's
	// "402::session_unknown" means an unknown session).
	CodeMissingParameter ErrorCode = 402
	// CodeForbidden means the client may not use the channel.
	CodeForbidden ErrorCode = 403
	// CodeUnknownChannel means the channel does not exist.
	CodeUnknownChannel ErrorCode = 404
	// CodeInvalidChannel means the channel name or pattern is invalid.
	CodeInvalidChannel ErrorCode = 405
	// CodeUnknownExtension means the server does not know an extension.
	CodeUnknownExtension ErrorCode = 406
	// CodePublishFailed means the server could not publish the message.
	CodePublishFailed ErrorCode = 407
	// CodeSlowConsumer means (Bayou) the session was ended because its
	// queue outgrew the server's limit.
	CodeSlowConsumer ErrorCode = 408
	// CodeTooManyRequests means (Bayou) the client handshakes or
	// publishes faster than the server allows.
	CodeTooManyRequests ErrorCode = 429
	// CodeServerError means the server failed.
	CodeServerError ErrorCode = 500
	// CodeUnavailable means (Bayou) the server's cluster is unavailable.
	CodeUnavailable ErrorCode = 503
)

// Error is a failure reported by the server in the "error" field of a
// reply, such as "403:/meta/foo:Forbidden channel".
//
// A string of the form "<3 digits>:<args>:<message>" is split into Code,
// Args (the comma-separated arguments, [""] when there are none) and
// Message. Any other string (free text set by a server extension, for
// example) gives Code 0, no Args and the whole string as Message.
type Error struct {
	// Code is the three-digit Bayeux error code (CodeUnknownClient,
	// CodeForbidden, CodeInvalidChannel, ...), or 0 when the string has
	// no code.
	Code ErrorCode
	// Args are the error's arguments, usually a channel or a field name.
	Args []string
	// Message is the human-readable text.
	Message string
	// Channel is the channel of the request that failed.
	Channel string
}

// ParseError parses a Bayeux error string. It never fails: a string that
// does not follow the "<code>:<args>:<message>" form becomes the Message of
// an Error with Code 0.
func ParseError(s string) *Error {
	if len(s) >= 5 && s[3] == ':' && isDigits(s[:3]) {
		if args, msg, ok := strings.Cut(s[4:], ":"); ok {
			code, _ := strconv.Atoi(s[:3])
			return &Error{Code: ErrorCode(code), Args: strings.Split(args, ","), Message: msg}
		}
	}
	return &Error{Message: s}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Error formats e the way the server wrote it.
func (e *Error) Error() string {
	if e.Code == 0 {
		return e.Message
	}
	return fmt.Sprintf("%03d:%s:%s", e.Code, strings.Join(e.Args, ","), e.Message)
}

// unknownClient reports whether e says that the session no longer exists
// on the server (faye's "401:<id>:Unknown client", CometD's
// "402::session_unknown"), so the request is retried on a new session.
func (e *Error) unknownClient() bool {
	return (e.Code == CodeUnknownClient && e.Message == "Unknown client") ||
		(e.Code == CodeMissingParameter && e.Message == "session_unknown")
}

// replyError returns the Error carried by an unsuccessful reply.
func replyError(m *Message) *Error {
	var e *Error
	if m.Error == "" {
		e = &Error{Message: "request failed"}
	} else {
		e = ParseError(m.Error)
	}
	e.Channel = m.Channel
	return e
}

// transportError is a failure to exchange messages with the server: a
// network error, an unparseable response, a closed socket or a missing
// reply. Requests failing this way are retried.
type transportError struct{ err error }

// Error describes the failure.
func (e *transportError) Error() string { return "transport: " + e.err.Error() }

// Unwrap returns the underlying failure.
func (e *transportError) Unwrap() error { return e.err }

func isTransportError(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}
