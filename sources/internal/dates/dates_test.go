package dates

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseDateLoose: the loose date reader never panics and gives a
// real date when it says it read one.
func FuzzParseDateLoose(f *testing.F) {
	for _, s := range []string{"Mon, 21 Aug 95 13:30:57 -600", "Wed 29 May 2019 06:09:22 PM EDT", "21-Aug-95 1.30 +5",
		"Tue, 3 Jun 2008 8:5:3 +0200", "Aug 21 1995 13:30:57 X", "Mon, 31 Apr 2020 10:00:00 +0000", ", , ,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, _, _, ok := parseDateLoose(s)
		if ok && (tm.Year() < 1900 || tm.Year() > 1<<20) && tm.Year() > 99 {
			_, off := tm.Zone()
			if off <= -86400 || off >= 86400 {
				t.Fatalf("%q: offset %d", s, off)
			}
		}
	})
}

func TestParseDates(t *testing.T) {
	tests := map[string]string{
		"Fri, 9 Jun 2006 00:44:16 -0700":        "2006-06-09T00:44:16-07:00",
		"Fri,  6 Apr 2007 15:43:55 -0700 (PDT)": "2007-04-06T15:43:55-07:00",
		"9 Jun 2006 00:44:16 GMT":               "2006-06-09T00:44:16Z",
		"Thu, 10 Feb 00 08:00:00 EST":           "2000-02-10T08:00:00-05:00",
		"Mon, 17 Sep 2001 00:00 +0200":          "2001-09-17T00:00:00+02:00",
		"Mon Sep 17 00:00:00 2001":              "2001-09-17T00:00:00Z",
		"2001-09-17 10:11:12":                   "2001-09-17T10:11:12Z",
		"Tue, 18 Sep 2001 10:11:12 +02:00":      "2001-09-18T10:11:12+02:00",
		"Wed, 19 Sep 2001 10:11:12 GMT+0100":    "2001-09-19T10:11:12+01:00",
		"Thu, 20 Sep 2001 10:11:12 +0000 (UTC)": "2001-09-20T10:11:12Z",
	}
	for in, want := range tests {
		got, err := Parse(in)
		if err != nil || got.Format(time.RFC3339) != want {
			t.Errorf("parseDate(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"From nobody Mon Sep 17 00:00:00 2001":       "2001-09-17T00:00:00Z",
		"From user@x Wed Feb  9 22:02 MET 2000":      "2000-02-09T22:02:00Z",
		"From user@x  Fri Apr  6 22:43:55 2007":      "2007-04-06T22:43:55Z",
		"From user@x Sat Jan  3 01:05:34 -0800 1998": "1998-01-03T01:05:34Z",
		"From -":   "",
		"From bob": "",
	} {
		got, ok := FromLine([]byte(in))
		s := ""
		if ok {
			s = got.Format(time.RFC3339)
		}
		if s != want {
			t.Errorf("fromLineDate(%q) = %q, want %q", in, s, want)
		}
	}
}

// Parse's canonical fast path must give what the lenient path gives.
func FuzzParseDateFastPath(f *testing.F) {
	for _, s := range []string{
		"Fri, 01 Mar 2019 09:01:49 +0000", "Fri, 9 Jun 2006 00:44:16 -0700", "fri, 9 jun 2006 00:44:16 -0700",
		"Mon, 17 Sep 2001 00:00 +0200", "Thu, 10 Feb 00 08:00:00 EST", "Sun, 31 Feb 2021 25:00:00 +0000",
		"Sat, 1 Jan 2000 00:00:00 +2400", "Tue, 18 Sep 2001 10:11:12 -0000", "Mon, 2 Jan 2006 15:04:05 +0530 ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, err := time.Parse(canonicalDate, strings.TrimSpace(s))
		if err != nil {
			return // the fast path does not apply
		}
		slow, err := parseDateLenient(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("%q: fast path parsed %v, lenient path failed: %v", s, fast, err)
		}
		_, fo := fast.Zone()
		_, so := slow.Zone()
		if !fast.Equal(slow) || fo != so {
			t.Fatalf("%q: fast path %v, lenient path %v", s, fast, slow)
		}
	})
}
