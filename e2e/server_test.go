package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The platform admin created on the server's first start.
const (
	adminEmail    = "admin@sportello.example.it"
	adminPassword = "Console-di-prova-2026"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// moduleRoot is the directory holding go.mod (tests run inside e2e/).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// sportelloBinary builds the real binary once per test run: the browser
// talks to exactly what `go run .` would start.
func sportelloBinary(t testing.TB) string {
	t.Helper()
	root := moduleRoot(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sportello-e2e-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "sportello")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is one running Sportello process with its own data directory.
type server struct {
	URL  string
	Data string
	cmd  *exec.Cmd
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort asks the kernel for an unused loopback port. The server gets a
// fixed port (not :0) so that the links it builds from its base URL, such as
// invitation links, point at itself.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs the binary on loopback with a fresh data dir and stops it
// (SIGTERM, graceful) when the test ends. The server log is printed when the
// test fails.
func startServer(t *testing.T, extraEnv ...string) *server {
	t.Helper()
	bin := sportelloBinary(t)
	s := &server{Data: t.TempDir(), out: &lockedBuffer{}}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
		cmd := exec.Command(bin, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--data", s.Data, "--dev")
		cmd.Env = append(cleanEnv(),
			"SPORTELLO_BASE_URL="+s.URL,
			"SPORTELLO_ADMIN_EMAIL="+adminEmail,
			"SPORTELLO_ADMIN_PASSWORD="+adminPassword,
			"SPORTELLO_LOG_LEVEL=warn",
		)
		cmd.Env = append(cmd.Env, extraEnv...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = s.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.cmd = cmd
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			seen := false
			for sc.Scan() {
				line := sc.Text()
				s.out.Write([]byte(line + "\n"))
				if !seen && strings.Contains(line, "Sportello is running") {
					seen = true
					ready <- true
				}
			}
			if !seen {
				ready <- false
			}
		}()
		select {
		case ok := <-ready:
			if ok {
				t.Cleanup(func() { s.stop(t) })
				return s
			}
			cmd.Wait()
			lastErr = fmt.Errorf("server exited before it was ready:\n%s", s.out.String())
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			lastErr = fmt.Errorf("server not ready after 30s:\n%s", s.out.String())
		}
	}
	t.Fatal(lastErr)
	return nil
}

func (s *server) stop(t *testing.T) {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && !t.Failed() {
			t.Errorf("server did not stop cleanly: %v\n%s", err, s.out.String())
		}
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-done
		t.Errorf("server ignored SIGTERM for 15s")
	}
	if t.Failed() {
		t.Logf("server output:\n%s", s.out.String())
	}
}

// cleanEnv is the test's environment without SPORTELLO_* settings, so a
// developer's own configuration does not leak into the test server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPORTELLO_") {
			env = append(env, kv)
		}
	}
	return env
}
