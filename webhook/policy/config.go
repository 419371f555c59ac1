package policy

// Trait is one entry of data.config.traits, the default policy's data (policies/data.yaml):
// what gives a Pod the trait and what the trait requires of its runtime.
type Trait struct {
	NamespaceLabels   map[string]string `json:"namespace_labels"`
	PodLabels         map[string]string `json:"pod_labels"`
	ExtendedResources []string          `json:"extended_resources"`
	DeviceClasses     []string          `json:"device_classes"`
	Requires          struct {
		Isolation int  `json:"isolation"`
		GPU       bool `json:"gpu"`
	} `json:"requires"`
}

// ClassDef is one entry of data.config.classes: what a RuntimeClass provides.
type ClassDef struct {
	Name      string `json:"name"`
	Isolation int    `json:"isolation"`
	GPU       bool   `json:"gpu"`
}
