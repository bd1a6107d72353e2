// Package json reads json sources (contract §3): JSON Lines, an array of
// message objects, or thread objects holding a "messages" array, streamed
// with encoding/json's token API so that memory holds one record at a
// time. A record that is not valid JSON costs that record: the reader
// resynchronizes (json.go, the top comment, has the rules). The fields
// become a record by the rules csv and json share (sources.Record).
package json
