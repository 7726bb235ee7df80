package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// state asks the runtime for a container's state; an unknown container is not running.
func (r *ociRunner) state(ctx context.Context, id string) (ContainerState, error) {
	var stderr bytes.Buffer
	cmd := r.command(ctx, "state", id)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if bytes.Contains(stderr.Bytes(), []byte("not exist")) || bytes.Contains(stderr.Bytes(), []byte("No such file")) {
			return ContainerState{}, &NotRunningError{ID: id}
		}
		return ContainerState{}, fmt.Errorf("%s state %s: %w: %s", r.name, id, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var st struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return ContainerState{}, fmt.Errorf("%s state %s: decode: %w", r.name, id, err)
	}
	return ContainerState{ID: id, Status: Status(st.Status), Pid: st.Pid, Bundle: st.Bundle}, nil
}

// execProcess runs the process described by processFile in container id and waits for it.
// Cancelling ctx sends SIGTERM to the process, SIGKILL after grace. The exit code is the
// process's; a *StartError when the runtime could not start it.
func (r *ociRunner) execProcess(ctx context.Context, id, processFile string, grace time.Duration, sio stdio) (int, error) {
	logFile, pidFile := processFile+".log", processFile+".pid"
	args := append([]string{"--root", r.root}, r.logFlag(logFile)...)
	args = append(args, "exec", "--process", processFile, "--pid-file", pidFile, id)
	_, direct := sio.Stderr.(*os.File)
	held := r.filterStderr(&sio)
	cmd := exec.Command(r.path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sio.Stdin, sio.Stdout, sio.Stderr
	if direct && held != nil {
		// The filter puts a pipe where the caller's file was: a process the command left in the
		// background must not hold the exec open through it once the command is done.
		cmd.WaitDelay = time.Second
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !sio.Terminal}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start %s exec: %w", r.name, err)
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { stopExec(cmd.Process, pidFile, grace, done, !sio.Terminal) })
	err := cmd.Wait()
	close(done)
	stop()
	return r.result(err, cmd, logFile, held)
}

// stopExec signals the exec'd process itself (through a pidfd, so a reused pid is never hit):
// SIGKILL on the runtime alone would leave it running inside the container.
// With group, the SIGKILL also goes to the runtime's process group, which the process and
// its children share: a shell's background child keeps the runtime waiting as long as it lives.
func stopExec(runtimeProc *os.Process, pidFile string, grace time.Duration, done <-chan struct{}, group bool) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	pidfd, _, _ := waitPidFile(ctx, pidFile, done)
	if pidfd < 0 {
		select {
		case <-done:
		default:
			runtimeProc.Kill() //nolint:errcheck // the runtime has not started the process after all this time
		}
		return
	}
	defer unix.Close(pidfd)
	unix.PidfdSendSignal(pidfd, unix.SIGTERM, nil, 0) //nolint:errcheck // it may have exited
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) //nolint:errcheck // it may have exited
	if group {
		// The runtime is not reaped before done: its pid, the group's id, is not reused.
		unix.Kill(-runtimeProc.Pid, unix.SIGKILL) //nolint:errcheck // the group may be gone
	}
}
