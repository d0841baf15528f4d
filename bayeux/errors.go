package bayeux

import "strings"

// Bayeux error strings have the form "<code>:<args>:<text>". The codes and
// texts below are faye's, which faye and CometD clients parse and which
// applications match on.

func errVersionMissing() string { return errParameterMissing("version") }

func errParameterMissing(field string) string {
	return "402:" + field + ":Missing required parameter"
}

func errClientUnknown(id string) string { return "401:" + id + ":Unknown client" }

func errConnTypesNotSupported(types []string) string {
	return "301:" + strings.Join(types, ",") + ":Connection types not supported"
}

func errChannelForbidden(channel string) string { return "403:" + channel + ":Forbidden channel" }

func errChannelInvalid(channel string) string { return "405:" + channel + ":Invalid channel" }

func errPublishFailed(channel string) string { return "407:" + channel + ":Failed to publish" }

// errSlowConsumer ends a session whose queue grew past its byte limit.
const errSlowConsumer = "408::Slow consumer - queue limit exceeded"

// errClusterUnavailable fails a handshake when the cluster's store cannot
// record the new session.
const errClusterUnavailable = "503::Cluster unavailable"
