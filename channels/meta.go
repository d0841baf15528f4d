package channels

// The meta channels of the Bayeux protocol, which the server and the client
// both speak. Other channels under /meta are refused.
const (
	MetaHandshake   = "/meta/handshake"
	MetaConnect     = "/meta/connect"
	MetaSubscribe   = "/meta/subscribe"
	MetaUnsubscribe = "/meta/unsubscribe"
	MetaDisconnect  = "/meta/disconnect"
)
