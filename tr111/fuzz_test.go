package tr111

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// FuzzSTUNDecode: the decoder and every accessor the client uses on a
// response must cope with any bytes.
func FuzzSTUNDecode(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzSTUNDecode")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeSTUN(b)
		if err != nil {
			return
		}
		m.Address(stun.AttrMappedAddress)
		m.Address(AttrResponseAddress)
		m.ErrorCode()
		m.Username()
		m.ChangeRequest()
		m.CheckIntegrity([]byte("key"))
		if !bytes.Equal(m.Raw, b[:len(m.Raw)]) {
			t.Fatal("Raw must be the bytes as received")
		}
	})
}

// FuzzSTUNServer: whatever a request holds, the server answers with a
// well-formed message or not at all, and never records a binding without a
// valid MESSAGE-INTEGRITY.
func FuzzSTUNServer(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzSTUNServer")
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		f.Fatal(err)
	}
	defer s.pri.Close()
	s.SetCredentials(map[string]Credential{"cpe-1": {STUNUsername: "cpe-1", STUNPassword: "secret"}})
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _, _ := s.Respond(b, from, false)
		if out != nil {
			if _, err := DecodeSTUN(out); err != nil {
				t.Fatalf("the server produced an undecodable answer: %v", err)
			}
		}
		if len(s.Bindings()) != 0 {
			t.Fatal("a binding was recorded without the password")
		}
	})
}

// FuzzUDPConnRequest: the parser and verifier never panic, and nothing is
// accepted without the password.
func FuzzUDPConnRequest(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzUDPConnRequest")
	f.Add(FormatUDPConnRequest("192.0.2.1:7547", 10, "1", "cr-user", "cn", "other"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseUDPConnRequest(b)
		if err != nil {
			return
		}
		if r.Verify("cr-user", "the-real-password", 0, "") == nil {
			t.Fatal("accepted without the password")
		}
	})
}

// FuzzCredentials: the credentials file parser never panics.
func FuzzCredentials(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzCredentials")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredentials(bytes.NewReader(b))
		if err == nil {
			for k, v := range c {
				if k != v.STUNUsername || k == "" {
					t.Fatal("inconsistent entry")
				}
			}
		}
	})
}

// FuzzSTUNAPI: any body to POST /connection-request gets a JSON answer
// with a 2xx or 4xx status, never a crash, and never a datagram to an
// address the server does not know.
func FuzzSTUNAPI(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzSTUNAPI")
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Copies: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer s.pri.Close()
	s.SetCredentials(testCreds)
	h := s.Handler(APIConfig{Token: "t"})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/connection-request", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if c := rec.Code; c >= 500 && c != http.StatusBadGateway {
			t.Fatalf("status %d for %q", c, body)
		}
		if rec.Code == http.StatusOK {
			t.Fatalf("sent a Connection Request for %q: %s", body, rec.Body)
		}
	})
}
