package build

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAddURL(t *testing.T) {
	body := "downloaded content\n"
	sum := sha256.Sum256([]byte(body))
	checksum := "sha256:" + hex.EncodeToString(sum[:])
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat))
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	f := newFixture(t)
	img, _, err := f.build("FROM scratch\nADD "+srv.URL+"/files/tool.sh /opt/\nADD --checksum="+checksum+" --chmod=0755 "+srv.URL+"/x /bin/x\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := f.files(img)
	if got["/opt/tool.sh"] != "0 0600 0:0 downloaded content" || got["/bin/x"] != "0 0755 0:0 downloaded content" {
		t.Errorf("ADD URL wrote %q and %q", got["/opt/tool.sh"], got["/bin/x"])
	}
	pinned := "FROM scratch\nADD --checksum=" + checksum + " " + srv.URL + "/x /bin/x\n"
	if _, _, err := f.build(pinned, nil); err != nil {
		t.Fatal(err)
	}
	before := gets.Load()
	if _, ev, err := f.build(pinned, nil); err != nil || ev.kinds()["[1/1] ADD --checksum="+checksum+" "+srv.URL+"/x /bin/x"] != EventCached {
		t.Fatalf("pinned ADD rebuild: %v %v", err, ev.kinds())
	}
	if gets.Load() != before {
		t.Error("a cached ADD with --checksum downloaded again")
	}
	for bf, want := range map[string]string{
		"FROM scratch\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " " + srv.URL + "/y /y\n": "checksum mismatch",
		"FROM scratch\nADD " + srv.URL + "/missing /m\n":                                             "404",
		"FROM scratch\nADD --checksum=md5:abc " + srv.URL + "/x /x\n":                                "invalid --checksum",
	} {
		if _, _, err := f.build(bf, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", bf, err, want)
		}
	}
}
