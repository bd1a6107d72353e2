// Package addr parses the addresses of a message's header or a record's
// fields into sources.Address values: leniently, one address at a time
// when the list is broken, so that one bad address does not lose the
// others, with the issue that names what was dropped.
package addr
