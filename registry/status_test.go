package registry

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// A registry that answers 500 to everything: the user sees the 500, not the TLS attempt
// that came before it.
func TestPermanent500ReportsTheStatus(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.seed(t, "lib/bb:1")
	fr.setFault(failN(1<<30, anyRequest, func(w http.ResponseWriter) {
		http.Error(w, "database on fire", http.StatusInternalServerError)
	}))
	s := openStore(t)
	_, err := Pull(context.Background(), s, fr.host()+"/lib/bb:1", fastRetry())
	if err == nil {
		t.Fatal("pull from a registry that only answers 500 succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "tls:") || strings.Contains(msg, "https://") {
		t.Errorf("error leads with the TLS fallback: %v", err)
	}
	if !strings.Contains(msg, "500") {
		t.Errorf("error does not give the status: %v", err)
	}
	assertNoImage(t, s)
}

// kiln login against a registry that answers 500 reports the 500 too.
func TestLogin500ReportsTheStatus(t *testing.T) {
	fr := newFaultyRegistry(t)
	fr.setFault(failN(1<<30, anyRequest, func(w http.ResponseWriter) {
		http.Error(w, "database on fire", http.StatusInternalServerError)
	}))
	o, err := makeOptions([]Option{fastRetry()})
	if err != nil {
		t.Fatal(err)
	}
	err = o.verifyLogin(context.Background(), fr.host(), "u", "p")
	if err == nil || strings.Contains(err.Error(), "https://") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("login to a 500 registry: %v", err)
	}
}
