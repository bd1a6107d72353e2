// Package dates parses the dates of real archives: RFC 5322 dates read
// leniently (obsolete forms, zone names, the shapes Python's email package
// accepts), saying what was read leniently, and the asctime date of an
// mbox "From " line. csv/json created_at values go through it too
// (sources.ParseTimestamp). It imports nothing of threadlift.
package dates
