package passwd

import (
	"strings"
	"testing"
)

// ids outside 0..2^32-2 never wrap into another id, in entries or in lookups (issue 10.6).
func TestIDRange(t *testing.T) {
	users := ParseUsers([]byte("neg:x:-5:0::/:/bin/sh\nhuge:x:99999999999:0::/:/bin/sh\nnoid:x:4294967295:0::/:/bin/sh\nok:x:4294967294:7::/home/ok:/bin/sh\n"))
	if len(users) != 1 || users[0].Name != "ok" || users[0].UID != MaxID || users[0].GID != 7 {
		t.Fatalf("users %+v, want only ok", users)
	}
	for _, name := range []string{"neg", "huge", "noid"} {
		if u, err := LookupUser(users, name); err == nil {
			t.Errorf("%s resolved to %+v", name, u)
		}
	}
	for _, arg := range []string{"-1", "-5", "4294967295", "4294967296", "99999999999"} {
		if u, err := LookupUser(users, arg); err == nil || !strings.Contains(err.Error(), "0 to 4294967294") {
			t.Errorf("uid %s: %+v, %v", arg, u, err)
		}
		if g, err := LookupGroup(nil, arg); err == nil {
			t.Errorf("gid %s: %+v", arg, g)
		}
	}
	if u, err := LookupUser(users, "4294967294"); err != nil || u.Name != "ok" {
		t.Errorf("max id: %+v %v", u, err)
	}
}

func TestLookup(t *testing.T) {
	users := ParseUsers([]byte("root:x:0:0:root:/root:/bin/sh\n# c\nbad\napp:x:1000:1000::/home/app:/bin/sh\n"))
	groups := ParseGroups([]byte("root:x:0:\nwheel:x:10:app, other\napp:x:1000:app\n"))
	if u, err := LookupUser(users, "app"); err != nil || u.UID != 1000 || u.Home != "/home/app" {
		t.Errorf("app: %+v %v", u, err)
	}
	if u, err := LookupUser(users, "4242"); err != nil || u.UID != 4242 || u.Name != "" {
		t.Errorf("4242: %+v %v", u, err)
	}
	if _, err := LookupUser(users, "nobody"); err == nil || !strings.Contains(err.Error(), "unable to find user nobody") {
		t.Errorf("nobody: %v", err)
	}
	if g := SupplementaryGroups(groups, "app", 1000); len(g) != 1 || g[0] != 10 {
		t.Errorf("supplementary %v", g)
	}
}
