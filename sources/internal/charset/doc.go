// Package charset decodes text in a declared charset to UTF-8 for every
// format, the way contract §9 asks: every IANA charset golang.org/x/text
// knows, looked up as go-message does; an unknown label keeps valid UTF-8
// and reads other bytes as windows-1252, and says so (Status). It also
// decodes RFC 2047 encoded words. It imports nothing of threadlift.
package charset
