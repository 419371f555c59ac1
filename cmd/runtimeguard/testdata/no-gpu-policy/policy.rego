# A policy whose data marks no class as a GPU class (inventory reads only its data).
package runtimeguard

decision := {"class": ""}
