package cwmp

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryAfter(t *testing.T) {
	date := "Tue, 01 Dec 2026 10:00:00 GMT"
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"60"}}, time.Minute},
		{http.Header{"Retry-After": {" 5 "}}, 5 * time.Second},
		{http.Header{"Retry-After": {"0"}}, 0},
		{http.Header{"Retry-After": {"-3"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"99999999999999999999"}}, 0}, // not a number: ignored
		{http.Header{"Retry-After": {"9999999999"}}, maxRetryAfter},
		// An HTTP-date counts from the response's Date, not the CPE's clock.
		{http.Header{"Retry-After": {"Tue, 01 Dec 2026 10:02:00 GMT"}, "Date": {date}}, 2 * time.Minute},
		{http.Header{"Retry-After": {"Tue, 01 Dec 2026 09:59:00 GMT"}, "Date": {date}}, 0},
		{http.Header{"Retry-After": {"Tue, 01 Dec 2036 09:59:00 GMT"}, "Date": {date}}, maxRetryAfter},
	} {
		assert.Equal(t, tc.want, retryAfter(tc.h.Get), "%v", tc.h)
	}
}
