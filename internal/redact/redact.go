// Package redact hides secrets in what is logged: a URL's password
// (http://user:password@host/), which would otherwise reach the log, and
// through it DeviceInfo.DeviceLog and uploaded log files.
package redact

import (
	"net/url"
	"strings"
)

// URL hides the password of a URL's userinfo.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "(unparsable URL, not shown)"
		}
		return s
	}
	return u.Redacted()
}

// URLs hides the password of every URL in a text (a log message).
func URLs(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '"' || r == '\'' || r == '<' || r == '>' })
	for _, f := range fields {
		if strings.Contains(f, "://") && strings.Contains(f, "@") {
			s = strings.ReplaceAll(s, f, URL(f))
		}
	}
	return s
}
