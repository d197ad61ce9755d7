"""The labelling loop: leases on a clip's slots, labels, the slot rules, the hot-path SQL."""
