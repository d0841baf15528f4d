// Package extensions holds Bayou's ready-made server extensions, each in its
// own package below this one:
//
//   - tokenauth: a shared secret or a list of tokens in ext
//   - jwtauth: JSON Web Tokens in ext, with a claim listing allowed channels
//   - callback: asks an HTTP back end whether to allow each operation
//   - acl: access rules by channel pattern
//   - presence: who is subscribed to a channel, on every node
//   - patterns: the channel-pattern algebra they share (overlap, cover)
//
// Every extension is a bayeux.Extension to put in bayeux.Config.Extensions;
// those that decide per recipient also implement bayeux.DeliveryFilter.
// Put an authentication extension (tokenauth, jwtauth or callback) before
// acl, so that acl sees the identity it attached. None of them checks the
// server's own publishes (bayeux.Message.FromServer). A subscribe naming
// several channels is refused the channels a rule refuses, and the others
// are subscribed (bayeux.Message.RejectChannel).
package extensions
