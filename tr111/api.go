package tr111

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
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

// Handler is the server's HTTP API for the ACS (TR-111 2.2.2.3 leaves how an
// ACS asks its STUN server to send a Connection Request open):
//
//	POST /connection-request   {"username": "..."} or {"address": "host:port", "cr_username": ..., "cr_password": ...}
//	GET  /bindings             the recorded bindings with their age
//	GET  /healthz              "ok"
//
// It listens on loopback by default; put it behind your own access control
// otherwise.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /bindings", func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			Binding
			AgeSeconds int64 `json:"age_seconds"`
		}
		now := time.Now()
		var out []row
		for _, b := range s.Bindings() {
			out = append(out, row{Binding: b, AgeSeconds: int64(now.Sub(b.LastSeen) / time.Second)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"bindings": out})
	})
	mux.HandleFunc("POST /connection-request", func(w http.ResponseWriter, r *http.Request) {
		var req ConnReqRequest
		if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" || r.URL.RawQuery != "" {
			r.ParseForm()
			req = ConnReqRequest{Username: r.Form.Get("username"), Address: r.Form.Get("address"),
				CRUsername: r.Form.Get("cr_username"), CRPassword: r.Form.Get("cr_password")}
		} else if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
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
			if err := s.ConnectionRequestTo(r.Context(), to, req.Address, req.CRUsername, req.CRPassword); err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"sent_to": to.String()})
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give username, or address with cr_username and cr_password"})
		}
	})
	return mux
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
