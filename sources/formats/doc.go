// Package formats owns the one table of the source formats threadlift
// reads: Registry builds a sources.Registry from each format package's
// descriptor. It is the only package that imports every format, so that
// the formats stay independent of one another and of their callers, and
// adding one (maildir, eml) is a package and a line here.
//
// Its tests cover what all formats share: opening by type, failures
// files read back as corrections, thread_key_prefix, attachment paths.
package formats
