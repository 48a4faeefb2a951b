package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// cluster is the running control plane.
type cluster struct {
	dir, logDir string
	self        string
	apiPort     int
	apiArgs     []string
	etcd        *embed.Etcd
	etcdURL     string
	pki         *pki
	withKCM     bool
	controllers string
	mu          sync.Mutex
	api         *exec.Cmd
	apiDone     chan struct{}
	// Set by stopAPIServer for the process it stops. One per process: a
	// restart starts the next apiserver while the old one's watcher may
	// still be about to look, and must not see the new process's flag.
	apiExpectedExit *atomic.Bool
	kcm             *exec.Cmd
	fatal           chan error
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func defaultDir() (string, error) {
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	return os.MkdirTemp(base, "crdkit-testcluster-")
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("dir", "", "state directory (default: a new directory on /dev/shm); removed on exit")
	logDir := fs.String("log-dir", "", "where component logs go (default: DIR/logs, removed on exit)")
	withKCM := fs.Bool("controller-manager", false, "also run kube-controller-manager (garbage collection, namespace deletion)")
	controllers := fs.String("controllers", "garbagecollector,namespace", "the controllers kube-controller-manager runs (e.g. add statefulset,serviceaccount)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log.SetPrefix("testcluster: ")
	log.SetFlags(log.Ltime)

	var err error
	c := &cluster{withKCM: *withKCM, controllers: *controllers, fatal: make(chan error, 4)}
	if *dir == "" {
		if c.dir, err = defaultDir(); err != nil {
			log.Printf("cannot create state directory: %v", err)
			return 1
		}
	} else {
		c.dir = *dir
		if err = os.MkdirAll(c.dir, 0o700); err != nil {
			log.Printf("cannot create %s: %v", c.dir, err)
			return 1
		}
	}
	c.logDir = *logDir
	if c.logDir == "" {
		c.logDir = filepath.Join(c.dir, "logs")
	}
	if err = os.MkdirAll(c.logDir, 0o700); err != nil {
		log.Printf("cannot create %s: %v", c.logDir, err)
		return 1
	}
	if c.self, err = os.Executable(); err != nil {
		log.Printf("cannot find own executable: %v", err)
		return 1
	}

	// Signals are caught from the start so a SIGTERM during start-up
	// still cleans up.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	code := 0
	if err = c.start(); err != nil {
		log.Printf("start failed: %v", err)
		code = 1
	} else {
		log.Printf("ready; environment in %s", filepath.Join(c.dir, "env"))
		select {
		case s := <-sigs:
			log.Printf("received %v, stopping", s)
		case err = <-c.fatal:
			log.Printf("stopping: %v", err)
			code = 1
		}
	}
	c.stop()
	return code
}

func (c *cluster) start() error {
	var err error
	if c.pki, err = makePKI(c.dir); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err = c.startEtcd(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if c.apiPort, err = freePort(); err != nil {
		return err
	}
	c.apiArgs = []string{
		"--etcd-servers=" + c.etcdURL,
		"--cert-dir=" + c.dir,
		"--tls-cert-file=" + filepath.Join(c.dir, "server.crt"),
		"--tls-private-key-file=" + filepath.Join(c.dir, "server.key"),
		"--secure-port=" + strconv.Itoa(c.apiPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--client-ca-file=" + filepath.Join(c.dir, "ca.crt"),
		fmt.Sprintf("--service-account-issuer=https://127.0.0.1:%d/", c.apiPort),
		"--service-account-key-file=" + filepath.Join(c.dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(c.dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--profiling=false",
	}
	if err = c.writeKubeconfigs(); err != nil {
		return err
	}
	if err = c.startAPIServer(); err != nil {
		return err
	}
	if c.withKCM {
		if err = c.startKCM(); err != nil {
			return err
		}
	}
	ctlPort, err := c.serveControl()
	if err != nil {
		return err
	}
	env := fmt.Sprintf("KUBECONFIG=%s\nCRDKIT_TEST_USER_KUBECONFIG=%s\nCRDKIT_TEST_CONTROL=http://127.0.0.1:%d\nCRDKIT_TEST_APISERVER=https://127.0.0.1:%d\nCRDKIT_TEST_CLUSTER_DIR=%s\n",
		filepath.Join(c.dir, "admin.kubeconfig"), filepath.Join(c.dir, "user.kubeconfig"), ctlPort, c.apiPort, c.dir)
	// Written last and atomically: its presence means "ready".
	tmp := filepath.Join(c.dir, "env.tmp")
	if err = os.WriteFile(tmp, []byte(env), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.dir, "env"))
}

func (c *cluster) startEtcd() error {
	cport, err := freePort()
	if err != nil {
		return err
	}
	pport, err := freePort()
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = "crdkit-test"
	cfg.Dir = filepath.Join(c.dir, "etcd")
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", cport))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", pport))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	// Benchmarks write a 200-KB ConfigMap many times a second for minutes;
	// etcd's 2-GiB default fills between the apiserver's compactions and then
	// refuses every write ("mvcc: database space exceeded"). The file is on
	// tmpfs and only grows as far as it is used.
	cfg.QuotaBackendBytes = 8 << 30
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(c.logDir, "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return errors.New("etcd not ready after 60s")
	}
	c.etcd = e
	c.etcdURL = cu.String()
	go func() {
		if err, ok := <-e.Err(); ok && err != nil {
			c.fatal <- fmt.Errorf("etcd: %w", err)
		}
	}()
	return nil
}

// child starts this binary as a component; done closes when it has exited.
func (c *cluster) child(name string, args []string) (cmd *exec.Cmd, done chan struct{}, err error) {
	f, err := os.OpenFile(filepath.Join(c.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	cmd = exec.Command(c.self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	// If this process dies (even by SIGKILL), the children die too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err = cmd.Start(); err != nil {
		f.Close()
		return nil, nil, err
	}
	done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	return cmd, done, nil
}

func (c *cluster) startAPIServer() error {
	c.mu.Lock()
	cmd, done, err := c.child("apiserver", c.apiArgs)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	expected := new(atomic.Bool)
	c.api, c.apiDone, c.apiExpectedExit = cmd, done, expected
	c.mu.Unlock()
	go func() {
		<-done
		if !expected.Load() {
			c.fatal <- fmt.Errorf("kube-apiserver exited unexpectedly (%v); see %s",
				cmd.ProcessState, filepath.Join(c.logDir, "apiserver.log"))
		}
	}()
	return c.waitReady(done)
}

func (c *cluster) stopAPIServer() {
	c.mu.Lock()
	cmd, done := c.api, c.apiDone
	if c.apiExpectedExit != nil {
		c.apiExpectedExit.Store(true)
	}
	c.api = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	// It normally stops within a second; one that hangs in its graceful
	// shutdown is killed well inside the 30 s a test gives a restart.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (c *cluster) adminTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(c.pki.ca.cert)
	cert, _ := tls.X509KeyPair(c.pki.admin.certPEM, c.pki.admin.keyPEM)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
}

func (c *cluster) waitReady(done chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: c.adminTLS()}}
	u := fmt.Sprintf("https://127.0.0.1:%d/readyz", c.apiPort)
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("kube-apiserver exited during start-up; see %s", filepath.Join(c.logDir, "apiserver.log"))
		default:
		}
		resp, err := client.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("kube-apiserver not ready after 120s")
}

func (c *cluster) startKCM() error {
	cmd, _, err := c.child("controller-manager", []string{
		"--kubeconfig=" + filepath.Join(c.dir, "admin.kubeconfig"),
		"--controllers=" + c.controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--root-ca-file=" + filepath.Join(c.dir, "ca.crt"),
		"--service-account-private-key-file=" + filepath.Join(c.dir, "sa.key"),
	})
	if err != nil {
		return err
	}
	c.kcm = cmd
	return nil
}

func (c *cluster) writeKubeconfigs() error {
	server := fmt.Sprintf("https://127.0.0.1:%d", c.apiPort)
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	write := func(file, user string, kp *keyPair) error {
		cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: crdkit-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: %s
  context:
    cluster: crdkit-test
    user: %s
    namespace: default
current-context: %s
`, server, b64(c.pki.ca.certPEM), user, b64(kp.certPEM), b64(kp.keyPEM), user, user, user)
		return os.WriteFile(filepath.Join(c.dir, file), []byte(cfg), 0o600)
	}
	if err := write("admin.kubeconfig", "admin", c.pki.admin); err != nil {
		return err
	}
	return write("user.kubeconfig", "crdkit-user", c.pki.user)
}

func (c *cluster) etcdClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{c.etcdURL}, DialTimeout: 5 * time.Second})
}

// compact compacts etcd at its current revision so that any watch resumed
// from an older resourceVersion gets 410 Gone.
func (c *cluster) compact(ctx context.Context) (int64, error) {
	cli, err := c.etcdClient()
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	return compactWith(ctx, cli)
}

func compactWith(ctx context.Context, cli *clientv3.Client) (int64, error) {
	resp, err := cli.Get(ctx, "/crdkit-compact-probe")
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	// Nothing written since an earlier compaction: it is compacted already.
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil &&
		!errors.Is(err, rpctypes.ErrCompacted) {
		return 0, err
	}
	return rev, nil
}

// defrag compacts etcd at its current revision, defragments it (giving the
// space of old revisions back) and disarms a NOSPACE alarm, so that a long
// benchmark can start each job from the same small database. It returns the
// database size before and after.
func (c *cluster) defrag(ctx context.Context) (map[string]int64, error) {
	cli, err := c.etcdClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	before, err := cli.Status(ctx, c.etcdURL)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	rev, err := compactWith(ctx, cli)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	if _, err := cli.Defragment(ctx, c.etcdURL); err != nil {
		return nil, fmt.Errorf("defragment: %w", err)
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		return nil, fmt.Errorf("alarm list: %w", err)
	}
	for _, a := range alarms.Alarms {
		if _, err := cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(a)); err != nil {
			return nil, fmt.Errorf("alarm disarm: %w", err)
		}
	}
	after, err := cli.Status(ctx, c.etcdURL)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return map[string]int64{"revision": rev, "db_bytes_before": before.DbSize, "db_bytes_after": after.DbSize,
		"alarms_disarmed": int64(len(alarms.Alarms))}, nil
}

func (c *cluster) serveControl() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
	post := func(path string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(w, "POST only", http.StatusMethodNotAllowed)
				return
			}
			v, err := fn(r)
			reply(w, v, err)
		})
	}
	post("/compact", func(r *http.Request) (any, error) {
		rev, err := c.compact(r.Context())
		return map[string]int64{"revision": rev}, err
	})
	post("/defrag", func(r *http.Request) (any, error) {
		return c.defrag(r.Context())
	})
	post("/apiserver/stop", func(*http.Request) (any, error) {
		c.stopAPIServer()
		return map[string]string{"apiserver": "stopped"}, nil
	})
	post("/apiserver/start", func(*http.Request) (any, error) {
		return map[string]string{"apiserver": "ready"}, c.startAPIServer()
	})
	post("/apiserver/restart", func(*http.Request) (any, error) {
		c.stopAPIServer()
		return map[string]string{"apiserver": "ready"}, c.startAPIServer()
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	go func() { _ = http.Serve(l, mux) }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) stop() {
	if c.kcm != nil && c.kcm.Process != nil {
		_ = c.kcm.Process.Signal(syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
		_ = c.kcm.Process.Kill()
	}
	c.stopAPIServer()
	if c.etcd != nil {
		c.etcd.Close()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		log.Printf("cannot remove %s: %v", c.dir, err)
	}
}
