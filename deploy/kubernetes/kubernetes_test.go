// Package kubernetes renders the kustomize base and the production overlay
// with the kustomize API, decodes every object strictly into its k8s.io/api
// type (an unknown field fails) and checks what the manifests promise.
package kubernetes

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// decoder decodes only the kinds Gatehouse ships, strictly.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, autoscalingv2.AddToScheme, batchv1.AddToScheme, corev1.AddToScheme,
		networkingv1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// sourceFS copies deploy/kubernetes into memory, so a test can add the
// operator's secrets.env (from its example) or break a file, without
// touching the checkout.
func sourceFS(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".env") && !strings.HasSuffix(path, ".example") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/k", path), b)
	})
	require.NoError(t, err)
	example, err := mem.ReadFile("/k/overlays/production/secrets.env.example")
	require.NoError(t, err)
	require.NoError(t, mem.WriteFile("/k/overlays/production/secrets.env", example))
	return mem
}

// objects is a rendered kustomization, decoded.
type objects struct {
	all        []runtime.Object
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	secret     *corev1.Secret
	account    *corev1.ServiceAccount
	namespace  *corev1.Namespace
	job        *batchv1.Job
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	policy     *networkingv1.NetworkPolicy
}

// render builds a kustomization with the kustomize API and decodes each
// object strictly; an unknown kind or field fails the test.
func render(t *testing.T, mem filesys.FileSystem, dir string) (*objects, error) {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/k", dir))
	if err != nil {
		return nil, err
	}
	out := &objects{}
	for _, r := range resources.Resources() {
		y, err := r.AsYAML()
		require.NoError(t, err)
		obj, _, err := decoder.Decode(y, nil, nil)
		if err != nil {
			return nil, err
		}
		out.all = append(out.all, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out.deployment = o
		case *corev1.Service:
			out.service = o
		case *corev1.ConfigMap:
			out.configMap = o
		case *corev1.Secret:
			out.secret = o
		case *corev1.ServiceAccount:
			out.account = o
		case *corev1.Namespace:
			out.namespace = o
		case *batchv1.Job:
			out.job = o
		case *policyv1.PodDisruptionBudget:
			out.pdb = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			out.hpa = o
		case *networkingv1.NetworkPolicy:
			out.policy = o
		default:
			t.Fatalf("unexpected object %T", obj)
		}
	}
	return out, nil
}

func mustRender(t *testing.T, dir string) *objects {
	t.Helper()
	o, err := render(t, sourceFS(t), dir)
	require.NoError(t, err)
	return o
}

func TestBaseAndProductionRenderStrictly(t *testing.T) {
	for _, dir := range []string{"base", "overlays/production"} {
		t.Run(dir, func(t *testing.T) {
			o := mustRender(t, dir)
			for name, got := range map[string]any{
				"Deployment": o.deployment, "Service": o.service, "ConfigMap": o.configMap, "Secret": o.secret,
				"ServiceAccount": o.account, "Job": o.job, "PodDisruptionBudget": o.pdb,
				"HorizontalPodAutoscaler": o.hpa, "NetworkPolicy": o.policy,
			} {
				require.NotNil(t, got, "%s: no %s", dir, name)
			}
			checkDeployment(t, o)
			checkJob(t, o)
			checkPolicies(t, o)
		})
	}
}

// The strict decode is what makes the test above mean something: a field
// the API does not know (here a typo) fails.
func TestStrictDecodingCatchesUnknownFields(t *testing.T) {
	mem := sourceFS(t)
	b, err := mem.ReadFile("/k/base/deployment.yaml")
	require.NoError(t, err)
	bad := strings.Replace(string(b), "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1)
	require.NotEqual(t, string(b), bad)
	require.NoError(t, mem.WriteFile("/k/base/deployment.yaml", []byte(bad)))
	_, err = render(t, mem, "base")
	require.ErrorContains(t, err, "readOnlyRootFileSystem")
}

// The overlay cannot be built without the operator's secrets.env.
func TestProductionNeedsSecretsFile(t *testing.T) {
	mem := sourceFS(t)
	require.NoError(t, mem.RemoveAll("/k/overlays/production/secrets.env"))
	_, err := render(t, mem, "overlays/production")
	require.ErrorContains(t, err, "secrets.env")
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// checkSecure checks the pod and container security settings that the
// "restricted" Pod Security Standard asks for, and a read-only root whose
// writable paths are emptyDirs.
func checkSecure(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	require.NotNil(t, spec.SecurityContext)
	require.True(t, *spec.SecurityContext.RunAsNonRoot)
	require.EqualValues(t, 65532, *spec.SecurityContext.RunAsUser, "the image's user")
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, spec.SecurityContext.SeccompProfile.Type)
	require.False(t, *spec.AutomountServiceAccountToken)

	sc := c.SecurityContext
	require.NotNil(t, sc)
	require.False(t, *sc.AllowPrivilegeEscalation)
	require.True(t, *sc.ReadOnlyRootFilesystem)
	require.False(t, *sc.Privileged)
	require.True(t, *sc.RunAsNonRoot)
	require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	require.Empty(t, sc.Capabilities.Add)

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, path := range []string{"/data", "/tmp"} {
		require.Contains(t, mounts, path, "%s is writable", path)
		var found bool
		for _, v := range spec.Volumes {
			if v.Name == mounts[path] {
				require.NotNil(t, v.EmptyDir, "%s is an emptyDir", path)
				found = true
			}
		}
		require.True(t, found)
	}

	// Settings come from the ConfigMap and the Secret.
	var refs []string
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			refs = append(refs, "configmap:"+e.ConfigMapRef.Name)
		case e.SecretRef != nil:
			refs = append(refs, "secret:"+e.SecretRef.Name)
		}
	}
	require.Len(t, refs, 2)
	require.Regexp(t, `^configmap:gatehouse$`, refs[0])
	require.Regexp(t, `^secret:gatehouse(-[a-z0-9]+)?$`, refs[1])
}

func checkDeployment(t *testing.T, o *objects) {
	d := o.deployment
	require.EqualValues(t, 3, *d.Spec.Replicas)
	require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
	require.Equal(t, intstr.FromInt32(0), *d.Spec.Strategy.RollingUpdate.MaxUnavailable, "rollouts never drop below the desired count")

	// The selector picks the template's pods, and only the servers.
	for k, v := range d.Spec.Selector.MatchLabels {
		require.Equal(t, v, d.Spec.Template.Labels[k], k)
	}
	require.Equal(t, "server", d.Spec.Selector.MatchLabels["app.kubernetes.io/component"])

	spec := d.Spec.Template.Spec
	c := container(t, spec, "gatehouse")
	require.Equal(t, []string{"serve"}, c.Args)
	checkSecure(t, spec, c)
	require.Equal(t, o.account.Name, spec.ServiceAccountName)

	// Requests and limits for CPU and memory, limits above requests.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		require.False(t, req.IsZero(), "request %s", r)
		require.False(t, lim.IsZero(), "limit %s", r)
		require.GreaterOrEqual(t, lim.Cmp(req), 0, "limit %s >= request", r)
	}

	require.Len(t, c.Ports, 1)
	require.EqualValues(t, 8080, c.Ports[0].ContainerPort, "GATEHOUSE_ADDR's port")
	require.Equal(t, ":8080", o.configMap.Data["GATEHOUSE_ADDR"])
	port := intstr.FromString(c.Ports[0].Name)
	probe := func(p *corev1.Probe, path string) {
		t.Helper()
		require.NotNil(t, p, path)
		require.NotNil(t, p.HTTPGet, path)
		require.Equal(t, path, p.HTTPGet.Path)
		require.Equal(t, port, p.HTTPGet.Port)
	}
	probe(c.LivenessProbe, "/api/v1/health/live")
	probe(c.ReadinessProbe, "/api/v1/health/ready")
	probe(c.StartupProbe, "/api/v1/health/live")
	// The readiness checks take up to 2 s; the probe waits longer.
	require.Greater(t, c.ReadinessProbe.TimeoutSeconds, int32(2))

	// preStop and the drain fit in the grace period.
	require.NotNil(t, c.Lifecycle.PreStop.Sleep)
	shutdown := o.configMap.Data["GATEHOUSE_SHUTDOWN_TIMEOUT"]
	require.Equal(t, "20s", shutdown)
	require.Greater(t, *spec.TerminationGracePeriodSeconds, c.Lifecycle.PreStop.Sleep.Seconds+20)

	// The Service, PDB and HPA point at this Deployment's pods.
	require.Equal(t, d.Spec.Selector.MatchLabels, o.service.Spec.Selector)
	require.Equal(t, port, o.service.Spec.Ports[0].TargetPort)
	require.Equal(t, d.Spec.Selector.MatchLabels, o.pdb.Spec.Selector.MatchLabels)
	require.Equal(t, intstr.FromInt32(1), *o.pdb.Spec.MaxUnavailable)
	require.Equal(t, "Deployment", o.hpa.Spec.ScaleTargetRef.Kind)
	require.Equal(t, d.Name, o.hpa.Spec.ScaleTargetRef.Name)
	require.Equal(t, *d.Spec.Replicas, *o.hpa.Spec.MinReplicas)
	require.Greater(t, o.hpa.Spec.MaxReplicas, *o.hpa.Spec.MinReplicas)
	require.Len(t, o.hpa.Spec.Metrics, 1)
	require.Equal(t, corev1.ResourceCPU, o.hpa.Spec.Metrics[0].Resource.Name)
	require.Equal(t, autoscalingv2.UtilizationMetricType, o.hpa.Spec.Metrics[0].Resource.Target.Type)

	require.Equal(t, "production", o.configMap.Data["GATEHOUSE_ENV"])
	// The Job migrates ahead; a pod that starts first migrates itself rather
	// than serve on an older schema (readiness does not check migrations).
	require.Equal(t, "true", o.configMap.Data["GATEHOUSE_AUTO_MIGRATE"])
	require.True(t, strings.HasPrefix(o.configMap.Data["GATEHOUSE_PUBLIC_URL"], "https://"))
	require.NotEmpty(t, o.configMap.Data["GATEHOUSE_TRUSTED_PROXIES"])
	// Secrets never sit in the ConfigMap.
	for k := range o.configMap.Data {
		for _, secret := range []string{"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "AUTH_TOKEN"} {
			require.NotContains(t, k, secret)
		}
	}
}

func checkJob(t *testing.T, o *objects) {
	j := o.job
	spec := j.Spec.Template.Spec
	c := container(t, spec, "migrate")
	require.Equal(t, []string{"migrate", "up"}, c.Args)
	require.Equal(t, container(t, o.deployment.Spec.Template.Spec, "gatehouse").Image, c.Image, "the Job migrates for the image that serves")
	require.Contains(t, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}, spec.RestartPolicy)
	require.NotNil(t, j.Spec.BackoffLimit)
	checkSecure(t, spec, c)
	// The Service never routes to the Job's pod.
	for k, v := range o.service.Spec.Selector {
		if j.Spec.Template.Labels[k] != v {
			return
		}
	}
	t.Fatal("the Service selects the migration Job's pod")
}

func checkPolicies(t *testing.T, o *objects) {
	p := o.policy
	// It covers the servers and the Job.
	for k, v := range p.Spec.PodSelector.MatchLabels {
		require.Equal(t, v, o.deployment.Spec.Template.Labels[k])
		require.Equal(t, v, o.job.Spec.Template.Labels[k])
	}
	require.ElementsMatch(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, p.Spec.PolicyTypes)
	// Ingress only to the HTTP port.
	for _, rule := range p.Spec.Ingress {
		require.NotEmpty(t, rule.From, "no ingress from everywhere")
		for _, port := range rule.Ports {
			require.Equal(t, intstr.FromString("http"), *port.Port)
		}
	}
	// Egress includes DNS and the database; the kube-dns selector kept its
	// own labels (kustomize adds none to selectors here).
	var dns, postgres bool
	for _, rule := range p.Spec.Egress {
		for _, port := range rule.Ports {
			switch port.Port.IntValue() {
			case 53:
				dns = true
				require.Equal(t, map[string]string{"k8s-app": "kube-dns"}, rule.To[0].PodSelector.MatchLabels)
			case 5432:
				postgres = true
			}
		}
	}
	require.True(t, dns)
	require.True(t, postgres)
}

func TestProductionOverlay(t *testing.T) {
	o := mustRender(t, "overlays/production")
	for _, obj := range o.all {
		m, err := runtimeMeta(obj)
		require.NoError(t, err)
		if _, ok := obj.(*corev1.Namespace); ok {
			continue
		}
		require.Equal(t, "gatehouse", m, "%T is in the gatehouse namespace", obj)
	}
	require.Equal(t, "restricted", o.namespace.Labels["pod-security.kubernetes.io/enforce"])

	// A pinned image, in the Deployment and the Job alike.
	image := container(t, o.deployment.Spec.Template.Spec, "gatehouse").Image
	require.Regexp(t, `^[a-z0-9.-]+/gatehouse:v[0-9]`, image)

	// The Secret is the operator's secrets.env, under a content-hashed name
	// that the Deployment and the Job refer to.
	require.Regexp(t, `^gatehouse-[a-z0-9]+$`, o.secret.Name)
	for _, spec := range []corev1.PodSpec{o.deployment.Spec.Template.Spec, o.job.Spec.Template.Spec} {
		var names []string
		for _, e := range spec.Containers[0].EnvFrom {
			if e.SecretRef != nil {
				names = append(names, e.SecretRef.Name)
			}
		}
		require.Equal(t, []string{o.secret.Name}, names)
	}
	key := string(o.secret.Data["GATEHOUSE_SECRET_KEY"])
	require.GreaterOrEqual(t, len(key), 32)
	require.True(t, strings.HasPrefix(string(o.secret.Data["GATEHOUSE_DATABASE_URL"]), "postgres://"))
	for k, v := range o.secret.Data {
		require.NotEqual(t, "REPLACE-ME", string(v), k)
	}

	// The overlay's patches took.
	require.EqualValues(t, 20, o.hpa.Spec.MaxReplicas)
	cpu := container(t, o.deployment.Spec.Template.Spec, "gatehouse").Resources.Requests[corev1.ResourceCPU]
	require.Equal(t, "1", cpu.String())
}

// The base's Secret holds placeholders Gatehouse refuses: a master key too
// short, URLs without a scheme. The overlay's template names the same keys.
func TestBaseSecretIsATemplateThatCannotRun(t *testing.T) {
	base := mustRender(t, "base").secret
	require.NotEmpty(t, base.Data)
	for k, v := range base.Data {
		require.Equal(t, "REPLACE-ME", string(v), k)
	}
	require.Less(t, len(base.Data["GATEHOUSE_SECRET_KEY"]), 32)

	production := mustRender(t, "overlays/production").secret
	var baseKeys, productionKeys []string
	for k := range base.Data {
		baseKeys = append(baseKeys, k)
	}
	for k := range production.Data {
		productionKeys = append(productionKeys, k)
	}
	require.ElementsMatch(t, baseKeys, productionKeys)
}

func runtimeMeta(obj runtime.Object) (string, error) {
	type namespaced interface{ GetNamespace() string }
	n, ok := obj.(namespaced)
	if !ok {
		return "", os.ErrInvalid
	}
	return n.GetNamespace(), nil
}
