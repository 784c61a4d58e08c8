package tr111

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ConnReqRequest is the body of POST /connection-request: either the
// STUNUsername of a CPE whose binding the server recorded, or an explicit
// address (UDPConnectionRequestAddress as the ACS learned it through
// notification) with the Connection Request credentials.
type ConnReqRequest struct {
	Username   string `json:"username,omitempty"`
	Address    string `json:"address,omitempty"`
	CRUsername string `json:"cr_username,omitempty"`
	CRPassword string `json:"cr_password,omitempty"`
}

// APIConfig configures the HTTP API.
type APIConfig struct {
	// Token is the bearer token every endpoint except /healthz requires
	// ("Authorization: Bearer TOKEN"). Empty refuses them all: the API
	// makes the server send datagrams, so it never runs open.
	Token string
	// AllowAnyAddress lets POST /connection-request name an address that
	// is neither a recorded binding nor one that sent the server a Binding
	// Request with CONNECTION-REQUEST-BINDING lately; without it such a
	// request is refused (403), so that the API cannot aim the STUN
	// socket's datagrams at arbitrary hosts.
	AllowAnyAddress bool
}

// maxAPIBody bounds a request body.
const maxAPIBody = 64 << 10

// Handler is the server's HTTP API for the ACS (TR-111 2.2.2.3 leaves how an
// ACS asks its STUN server to send a Connection Request open):
//
//	POST /connection-request   {"username": "..."} or {"address": "host:port", "cr_username": ..., "cr_password": ...}
//	GET  /bindings             the recorded bindings with their age
//	GET  /healthz              "ok" (no token needed)
//
// Bodies are JSON whatever the Content-Type says (curl -d sends a form
// type); a form-encoded body is read too.
func (s *Server) Handler(api APIConfig) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /bindings", func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			Binding
			AgeSeconds int64 `json:"age_seconds"`
		}
		now := time.Now()
		out := []row{}
		for _, b := range s.Bindings() {
			out = append(out, row{Binding: b, AgeSeconds: int64(now.Sub(b.LastSeen) / time.Second)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"bindings": out})
	})
	mux.HandleFunc("POST /connection-request", func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeConnReqRequest(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
			return
		}
		switch {
		case req.Username != "":
			to, err := s.ConnectionRequest(r.Context(), req.Username)
			if errors.Is(err, ErrUnknownCPE) {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			if err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"sent_to": to})
		case req.Address != "":
			to, err := net.ResolveUDPAddr("udp4", withDefaultPort(req.Address))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "address: " + err.Error()})
				return
			}
			if !api.AllowAnyAddress && !s.KnownAddress(to.AddrPort()) {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "address " + to.String() +
					" has no recorded binding and sent no CONNECTION-REQUEST-BINDING lately (stun_server.api_allow_any_address allows it)"})
				return
			}
			if err := s.ConnectionRequestTo(r.Context(), to, req.Address, req.CRUsername, req.CRPassword); err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"sent_to": to.String()})
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give username, or address with cr_username and cr_password"})
		}
	})
	return requireToken(api.Token, mux)
}

// requireToken checks the bearer token on everything but /healthz, in
// constant time.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
			if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="cwmp-agent stun-server"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid Authorization: Bearer token is required"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// decodeConnReqRequest reads the body as JSON, whatever the Content-Type
// says, and as a form when it is not JSON.
func decodeConnReqRequest(r *http.Request) (ConnReqRequest, error) {
	var req ConnReqRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil {
		return req, err
	}
	if len(body) > maxAPIBody {
		return req, errors.New("larger than 64 KiB")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, err
		}
		return req, nil
	}
	form, err := url.ParseQuery(string(trimmed))
	if err != nil || len(form) == 0 {
		return req, errors.New("want a JSON object")
	}
	return ConnReqRequest{Username: form.Get("username"), Address: form.Get("address"),
		CRUsername: form.Get("cr_username"), CRPassword: form.Get("cr_password")}, nil
}

// withDefaultPort adds port 80 to a UDPConnectionRequestAddress without one
// (TR-111 2.2.2.2.2).
func withDefaultPort(a string) string {
	if _, _, err := net.SplitHostPort(a); err != nil {
		return net.JoinHostPort(a, "80")
	}
	return a
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
