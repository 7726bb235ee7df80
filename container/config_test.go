package container

import "testing"

func TestParseRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RestartPolicy
		bad  bool
	}{
		{"", RestartPolicy{Name: RestartNo}, false},
		{"no", RestartPolicy{Name: RestartNo}, false},
		{"always", RestartPolicy{Name: RestartAlways}, false},
		{"unless-stopped", RestartPolicy{Name: RestartUnlessStopped}, false},
		{"on-failure", RestartPolicy{Name: RestartOnFailure}, false},
		{"on-failure:3", RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 3}, false},
		{"on-failure:-1", RestartPolicy{}, true},
		{"on-failure:x", RestartPolicy{}, true},
		{"always:2", RestartPolicy{}, true},
		{"sometimes", RestartPolicy{}, true},
	} {
		got, err := ParseRestartPolicy(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	onFail2 := RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 2}
	for _, tc := range []struct {
		p              RestartPolicy
		code, restarts int
		stopped, want  bool
	}{
		{RestartPolicy{Name: RestartNo}, 1, 0, false, false},
		{RestartPolicy{Name: RestartAlways}, 0, 100, false, true},
		{RestartPolicy{Name: RestartAlways}, 0, 0, true, false},
		{RestartPolicy{Name: RestartUnlessStopped}, 1, 0, false, true},
		{onFail2, 0, 0, false, false},
		{onFail2, 3, 0, false, true},
		{onFail2, 3, 1, false, true},
		{onFail2, 3, 2, false, false},
		{RestartPolicy{Name: RestartOnFailure}, 3, 50, false, true},
	} {
		if got := tc.p.shouldRestart(tc.code, tc.restarts, tc.stopped); got != tc.want {
			t.Errorf("%v.shouldRestart(%d, %d, %v) = %v", tc.p, tc.code, tc.restarts, tc.stopped, got)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"HUP": 1, "sighup": 1, "SIGKILL": 9, "term": 15, "10": 10} {
		if got, err := ParseSignal(in); err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "NOPE"} {
		if _, err := ParseSignal(in); err == nil {
			t.Errorf("ParseSignal(%q) accepted", in)
		}
	}
}
