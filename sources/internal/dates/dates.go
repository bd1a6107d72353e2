package dates

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// extra layouts tried after net/mail.ParseDate, on a cleaned-up value.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 -0700 -0700",
	"Mon, Jan 2 2006 15:04:05 -0700",
	"Mon, Jan 2, 2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05Z07:00",
	"Monday, January 2, 2006 3:04 PM",
	"Monday, January 2, 2006 15:04:05 -0700",
	"2 January 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 3:04:05 PM -0700",
	"01/02/2006 15:04:05",
	"Mon, 02-Jan-2006 15:04:05 -0700",
	"2-Jan-2006 15:04:05 -0700",
}

// zoneNames maps the zone names RFC 822 knows and a few common ones to
// numeric offsets (time.Parse gives unknown abbreviations offset 0).
var zoneNames = map[string]string{
	"UT": "+0000", "UTC": "+0000", "GMT": "+0000", "Z": "+0000", "WET": "+0000",
	"EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500",
	"MST": "-0700", "MDT": "-0600", "PST": "-0800", "PDT": "-0700",
	"AST": "-0400", "ADT": "-0300", "HST": "-1000", "AKST": "-0900", "AKDT": "-0800",
	"BST": "+0100", "IST": "+0530", "CET": "+0100", "CEST": "+0200", "MET": "+0100",
	"MEST": "+0200", "MEZ": "+0100", "MESZ": "+0200", "EET": "+0200", "EEST": "+0300",
	"WEST": "+0100", "JST": "+0900", "KST": "+0900", "HKT": "+0800", "SGT": "+0800",
	"AEST": "+1000", "AEDT": "+1100", "ACST": "+0930", "AWST": "+0800", "NZST": "+1200", "NZDT": "+1300",
	"MSK": "+0300",
}

// Parse parses an RFC 5322 date leniently: net/mail first, then the
// value with comments removed, zone names made numeric, and extra layouts.
func Parse(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, fmt.Errorf("empty date")
	}
	// The canonical form first: it is what nearly every archive holds, and
	// net/mail reaches it only after 24 failed layouts (a third of the
	// scan's CPU on small messages). When it parses, cleanDate would not
	// have changed v and net/mail would have used this very layout.
	if t, err := time.Parse(canonicalDate, v); err == nil {
		return t, nil
	}
	t, _, weak, err := ParseNote(v)
	if weak {
		return time.Time{}, fmt.Errorf("unknown zone in date %q", v)
	}
	return t, err
}

const canonicalDate = "Mon, 2 Jan 2006 15:04:05 -0700"

// parseDateLenient is Parse without the canonical fast path.
func parseDateLenient(v string) (time.Time, error) {
	// Zone names first (net/mail gives "EST" offset 0), comments out.
	c := cleanDate(v)
	if t, err := mail.ParseDate(c); err == nil {
		return t, nil
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, c); err == nil {
			return t, nil
		}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("unrecognized date %q", v)
}

// cleanDate removes comments, stray punctuation and replaces zone names by
// numeric offsets.
func cleanDate(v string) string {
	f := strings.Fields(stripComments(v))
	hasNum := false
	for _, w := range f {
		if (strings.HasPrefix(w, "+") || strings.HasPrefix(w, "-")) && len(w) == 5 {
			hasNum = true
		}
	}
	out := f[:0]
	for _, w := range f {
		w = strings.TrimSuffix(w, ".")
		u := strings.ToUpper(w)
		if off, ok := zoneNames[u]; ok {
			if hasNum {
				continue
			}
			w = off
			hasNum = true
		} else if strings.HasPrefix(u, "GMT") || strings.HasPrefix(u, "UTC") {
			rest := u[3:]
			if len(rest) == 5 && (rest[0] == '+' || rest[0] == '-') {
				w = rest
			}
		} else if len(w) == 5 && (w[0] == '+' || w[0] == '-') && !strings.Contains(w[1:], ":") {
			// numeric zone, fine
		} else if len(w) == 6 && (w[0] == '+' || w[0] == '-') && w[3] == ':' {
			w = w[:3] + w[4:]
		}
		// "Mon," "Monday," and "Mon" stay; a lone trailing comma after a date part goes.
		if len(w) > 1 && strings.HasSuffix(w, ",") && !isWeekday(strings.TrimSuffix(w, ",")) {
			w = strings.TrimSuffix(w, ",")
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

func isWeekday(s string) bool {
	if len(s) < 3 {
		return false
	}
	switch strings.ToLower(s[:3]) {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

// FromLine reads the asctime date of a "From " line ("From sender Mon
// Sep 17 00:00:00 2001", "From sender Wed Feb  9 22:02 MET 2000"). The
// date has no zone: it is UTC (contract §10); a zone name or offset on the
// line is ignored.
func FromLine(line []byte) (time.Time, bool) {
	f := strings.Fields(string(line))
	// find the weekday followed by a month name
	for i := 1; i+1 < len(f); i++ {
		if !isWeekday(f[i]) || !isMonth(f[i+1]) {
			continue
		}
		var parts []string
		for _, w := range f[i:] {
			if w == "" || w[0] == '+' || w[0] == '-' || isAlphaZone(w) && len(parts) >= 3 {
				continue // zone
			}
			parts = append(parts, w)
		}
		if len(parts) < 5 {
			return time.Time{}, false
		}
		s := strings.Join(parts[:5], " ")
		for _, l := range []string{"Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04 2006"} {
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				return t, true
			}
		}
		return time.Time{}, false
	}
	return time.Time{}, false
}

func isMonth(s string) bool {
	if len(s) < 3 {
		return false
	}
	switch strings.ToLower(s[:3]) {
	case "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec":
		return true
	}
	return false
}

func isAlphaZone(s string) bool {
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// ParseNote is Parse saying, in note, what it had to read
// leniently where the meaning is still clear: a zone of one to three
// digits (-600 = -0600, -6 = -0600), an unknown zone name (read as UTC),
// a two-digit year (95 = 1995, 05 = 2005, as Python reads them). note is
// "" for a date written as RFC 5322 asks. weak says the zone was not
// known: the time may be off by hours, and a date from elsewhere (a
// Received header, the From line) is better when there is one.
func ParseNote(v string) (t time.Time, note string, weak bool, err error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(canonicalDate, v); err == nil {
		return t, "", false, nil
	}
	if t, err := parseDateLenient(v); err == nil {
		// It parses; say so when its year has two digits.
		if lt, note, weak, ok := parseDateLoose(v); ok && !weak && lt.Equal(t) {
			return t, note, false, nil
		}
		return t, "", false, nil
	}
	if t, note, weak, ok := parseDateLoose(v); ok {
		return t, note, weak, nil
	}
	return time.Time{}, "", false, fmt.Errorf("unrecognized date %q", v)
}

// parseDateLoose reads a date the way Python's email.utils.parsedate_tz
// does (the referee of real archives): "[weekday,] day month year time
// [zone]" with day and month in either order, year and time swapped, a
// dot for a colon, two-digit years, numeric zones of any length. It also
// reads 12-hour clocks ("06:09:22 PM"), which Python misreads as a zone.
func parseDateLoose(v string) (t time.Time, note string, weak, ok bool) {
	// Comments out first: "(PDT)".
	data := strings.Fields(stripComments(v))
	if len(data) == 0 {
		return time.Time{}, "", false, false
	}
	if strings.HasSuffix(data[0], ",") || isWeekdayName(data[0]) {
		data = data[1:]
	} else if i := strings.LastIndexByte(data[0], ','); i >= 0 {
		data[0] = data[0][i+1:]
	}
	if len(data) == 3 { // RFC 850: dd-mon-yy
		if stuff := strings.Split(data[0], "-"); len(stuff) == 3 {
			data = append(stuff, data[1:]...)
		}
	}
	// A 12-hour clock: the AM/PM word after the time.
	pm, am := false, false
	for i := 1; i < len(data); i++ {
		switch strings.ToUpper(strings.TrimSuffix(data[i], ",")) {
		case "PM", "P.M.":
			pm = strings.Contains(data[i-1], ":")
		case "AM", "A.M.":
			am = strings.Contains(data[i-1], ":")
		default:
			continue
		}
		if pm || am {
			data = append(data[:i:i], data[i+1:]...)
			break
		}
	}
	if len(data) == 4 {
		s := data[3]
		i := strings.IndexByte(s, '+')
		if i < 0 {
			i = strings.IndexByte(s, '-')
		}
		if i > 0 {
			data = append(data[:3:3], s[:i], s[i:])
		} else {
			data = append(data, "")
		}
	}
	if len(data) < 5 {
		return time.Time{}, "", false, false
	}
	dd, mm, yy, tm, tz := data[0], strings.ToLower(data[1]), data[2], data[3], data[4]
	if dd == "" || mm == "" || yy == "" {
		return time.Time{}, "", false, false
	}
	month := monthNumber(mm)
	if month == 0 {
		dd, mm = mm, strings.ToLower(dd)
		if month = monthNumber(mm); month == 0 {
			return time.Time{}, "", false, false
		}
	}
	dd = strings.TrimSuffix(dd, ",")
	if i := strings.IndexByte(yy, ':'); i > 0 {
		yy, tm = tm, yy
	}
	yy = strings.TrimSuffix(yy, ",")
	if yy == "" || yy[0] < '0' || yy[0] > '9' {
		yy, tz = tz, yy
	}
	tm = strings.TrimSuffix(tm, ",")
	parts := strings.Split(tm, ":")
	if len(parts) == 1 && strings.Contains(tm, ".") {
		parts = strings.Split(tm, ".")
	}
	if len(parts) == 2 {
		parts = append(parts, "0")
	}
	if len(parts) != 3 {
		return time.Time{}, "", false, false
	}
	nums := make([]int, 0, 5)
	for _, s := range append([]string{yy, dd}, parts...) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return time.Time{}, "", false, false
		}
		nums = append(nums, n)
	}
	year, day, hh, mi, ss := nums[0], nums[1], nums[2], nums[3], nums[4]
	var notes []string
	if year < 100 {
		y := year + 2000
		if year > 68 {
			y = year + 1900
		}
		notes = append(notes, fmt.Sprintf("two-digit year %s read as %d", yy, y))
		year = y
	}
	switch {
	case pm && hh >= 1 && hh <= 11:
		hh += 12
	case am && hh == 12:
		hh = 0
	case (pm || am) && (hh == 0 || hh > 12):
		return time.Time{}, "", false, false
	}
	if ss == 60 {
		ss = 59 // a leap second
	}
	offset := 0
	utz := strings.ToUpper(tz)
	if off, ok := zoneNames[utz]; ok {
		offset = zoneSeconds(off)
	} else if len(tz) > 1 && (tz[0] == '+' || tz[0] == '-') && isDigits(tz[1:]) && len(tz) <= 5 {
		n, _ := strconv.Atoi(tz[1:])
		digits := len(tz) - 1
		switch {
		case digits <= 2: // hours
			offset = n * 3600
		default: // hhmm, the hours' leading zero missing when 3 digits
			offset = n/100*3600 + n%100*60
		}
		if tz[0] == '-' {
			offset = -offset
		}
		if digits != 4 {
			notes = append(notes, fmt.Sprintf("zone %s read as %s", tz, formatOffset(offset)))
		}
	} else if tz != "" {
		notes = append(notes, fmt.Sprintf("unknown zone %q read as UTC", clip([]byte(tz), 20)))
		weak = true
	}
	if month < 1 || day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 59 || offset <= -24*3600 || offset >= 24*3600 {
		return time.Time{}, "", false, false
	}
	t = time.Date(year, time.Month(month), day, hh, mi, ss, 0, time.FixedZone("", offset))
	if t.Day() != day { // 31 April
		return time.Time{}, "", false, false
	}
	return t, strings.Join(notes, ", "), weak, true
}

func isWeekdayName(s string) bool {
	switch strings.ToLower(s) {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

func monthNumber(s string) int {
	for i, m := range []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
		"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"} {
		if s == m {
			return i%12 + 1
		}
	}
	return 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// zoneSeconds turns "+0530" into seconds east of UTC.
func zoneSeconds(z string) int {
	n, _ := strconv.Atoi(z[1:])
	s := n/100*3600 + n%100*60
	if z[0] == '-' {
		return -s
	}
	return s
}

func formatOffset(sec int) string {
	sign := '+'
	if sec < 0 {
		sign, sec = '-', -sec
	}
	return fmt.Sprintf("%c%02d%02d", sign, sec/3600, sec%3600/60)
}

// clip shortens b to n bytes for a reason, without cutting a UTF-8
// sequence.
func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		for len(b) > 0 && !utf8.Valid(b) && len(b) > n-4 {
			b = b[:len(b)-1]
		}
		return string(b) + "..."
	}
	return string(b)
}

// stripComments drops RFC 5322 comments, "(PDT)", nested ones included;
// an unbalanced ")" is kept out as well.
func stripComments(v string) string {
	if !strings.ContainsRune(v, '(') && !strings.ContainsRune(v, ')') {
		return v
	}
	var b strings.Builder
	depth := 0
	for _, r := range v {
		switch {
		case r == '(':
			depth++
		case r == ')':
			if depth > 0 {
				depth--
			}
		case depth > 0:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
