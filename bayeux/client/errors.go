package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrClosed is returned by operations on a Client after Close, and by
	// operations that were waiting when Close was called.
	ErrClosed = errors.New("client: closed")

	// ErrStopped is returned once the server has advised reconnect "none":
	// the client makes no further requests and should be closed.
	ErrStopped = errors.New("client: server advised not to reconnect")

	// ErrUnsubscribed is the Err of a Subscription ended by its Cancel
	// method.
	ErrUnsubscribed = errors.New("client: unsubscribed")
)

// Error is a failure reported by the server in the "error" field of a
// reply, such as "403:/meta/foo:Forbidden channel".
//
// A string of the form "<3 digits>:<args>:<message>" is split into Code,
// Args (the comma-separated arguments, [""] when there are none) and
// Message. Any other string (free text set by a server extension, for
// example) gives Code 0, no Args and the whole string as Message.
type Error struct {
	// Code is the three-digit Bayeux error code (401 unknown client, 402
	// missing parameter, 403 forbidden channel, 405 invalid channel, ...),
	// or 0 when the string has no code.
	Code int
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
			return &Error{Code: code, Args: strings.Split(args, ","), Message: msg}
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
	return (e.Code == 401 && e.Message == "Unknown client") ||
		(e.Code == 402 && e.Message == "session_unknown")
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
