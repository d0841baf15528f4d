package bayeux

import (
	"strconv"
	"strings"
)

// Bayeux error strings have the form "<code>:<args>:<text>". The codes and
// texts below are faye's, which faye and CometD clients parse and which
// applications match on. The text may hold letters, digits, spaces and
// - _ ! ~ ( ) $ @ / * . only: faye's client parses nothing else (a comma,
// a colon or a semicolon turns the whole error into an unparsed message).
//
// Extensions reject a message by setting Message.Error to such a string;
// the exported builders below give the ones clients know.

func errVersionMissing() string { return ErrorParameterMissing("version") }

// ErrorParameterMissing returns the error "402:<field>:Missing required
// parameter", for a message that lacks a field it needs.
func ErrorParameterMissing(field string) string {
	return "402:" + field + ":Missing required parameter"
}

// ErrorUnknownClient returns the error "401:<clientId>:Unknown client",
// which clients answer with a new handshake.
func ErrorUnknownClient(id string) string { return "401:" + id + ":Unknown client" }

func errConnTypesNotSupported(types []string) string {
	return "301:" + strings.Join(types, ",") + ":Connection types not supported"
}

// ErrorForbidden returns the error "403:<channel>:Forbidden channel", for
// a message on (or a subscription to) a channel its sender may not use.
func ErrorForbidden(channel string) string { return "403:" + channel + ":Forbidden channel" }

// ErrorInvalidChannel returns the error "405:<channel>:Invalid channel".
func ErrorInvalidChannel(channel string) string { return "405:" + channel + ":Invalid channel" }

func errPublishFailed(channel string) string { return "407:" + channel + ":Failed to publish" }

// errSlowConsumer ends a session whose queue grew past its byte limit.
const errSlowConsumer = "408::Slow consumer - queue limit exceeded"

// errClusterUnavailable fails a handshake when the cluster's store cannot
// record the new session.
const errClusterUnavailable = "503::Cluster unavailable"

// errShuttingDown fails the connects held when the server shuts down.
const errShuttingDown = "503::Server shutting down"

// errInvalidUTF8 refuses a message whose field is not valid UTF-8.
func errInvalidUTF8(field string) string { return "400:" + field + ":Invalid UTF-8" }

// errTooManyHandshakes refuses the handshakes of a batch after its first.
const errTooManyHandshakes = "400::One handshake per request"

func errTooManySubscriptions(channel string, limit int) string {
	return "403:" + channel + ":Too many subscriptions (limit " + strconv.Itoa(limit) + ")"
}

// errHandshakeRate refuses a handshake over Config.HandshakeRate.
const errHandshakeRate = "429::Too many handshakes - retry later"

func errPublishRate(channel string) string {
	return "429:" + channel + ":Too many publishes - slow down"
}

// errReplayLost refuses a subscribe whose replay position is no longer
// retained (or belongs to another epoch), unless the server or the
// subscribe asks for a report instead (Config.ReplayLost).
func errReplayLost(channel string, from int64) string {
	return "400:" + channel + ":Replay position " + strconv.FormatInt(from, 10) +
		" is no longer retained - subscribe with -2 for every retained message or -1 for new ones"
}

// errReplayInvalid refuses a subscribe whose ext.replay cannot be read, or
// names a pattern.
func errReplayInvalid(channel string) string {
	return "400:" + channel + ":Invalid replay - give a channel name with -1 or -2 or a replayId (and its epoch)"
}

// errReplayFailed fails a subscribe whose history could not be read.
func errReplayFailed(channel string) string { return "500:" + channel + ":Replay failed" }
