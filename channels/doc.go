// Package channels implements Bayeux channel names: their grammar, wildcard
// matching, and a concurrent subscription index. It does no I/O and holds
// no global mutable state.
//
// # Grammar
//
// A channel name is "/" followed by one or more segments separated by "/",
// such as "/chat/room-1". Every segment is non-empty, so "/", "//" and
// "/foo/" are not names. Under the Strict grammar (faye's, the default) a
// segment holds ASCII letters, digits and - _ ! ~ ( ) $ @; the Wide grammar
// (CometD's) also allows space and # + . { }. See [Grammar], [ValidName] and
// [ValidPattern].
//
// Names whose first segment is "meta" are protocol channels ([IsMeta]);
// names whose first segment is "service" are request/response channels that
// are not broadcast ([IsService]).
//
// # Wildcards
//
// A pattern is zero or more segments followed by a final segment that is
// exactly "*" or "**"; wildcards may appear nowhere else. "/foo/*" matches
// the names with exactly one segment after "/foo", such as "/foo/bar" but
// not "/foo/bar/baz"; "/foo/**" matches those with one or more, including
// "/foo/bar/baz"; neither matches "/foo" itself. "/*" matches every
// one-segment name and "/**" matches every name. Patterns may be subscribed
// to but not published on.
//
// # Expansion
//
// Instead of testing a published channel against every subscribed pattern,
// a server lists the few patterns that could match it and looks each one up:
// [Expand]("/a/b/c") is "/**", "/a/**", "/a/b/**", "/a/b/*" and "/a/b/c":
// the name itself, its parent plus "/*", and every proper prefix plus "/**",
// two more entries than the name has segments.
// [Match] tests a single pattern against a name directly.
//
// # Index
//
// [Index] maps patterns to subscribers (of any comparable type, such as a
// session pointer) and combines the two: [Index.AppendMatch] appends every
// subscriber of every pattern in the expansion of a channel, each exactly
// once. It is built for the publish fan-out path: patterns are spread over
// 64 independently locked shards, each pattern's subscribers are a slice
// that is copied under a read lock, and in the steady state a call makes no
// allocation.
package channels
