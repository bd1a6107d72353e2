// Package csv reads csv sources (contract §3): one message per row, a
// header row naming the fields (renamed by sources.Options.Fields),
// attachments given by path. Its own row scanner knows each row's offset
// and line, keeps at most max_message_bytes of a row and resynchronizes
// after a quoting error, so that one bad row costs one record
// (csv.go, the top comment, has the rules). The fields become a record by
// the rules csv and json share (sources.Record).
package csv
