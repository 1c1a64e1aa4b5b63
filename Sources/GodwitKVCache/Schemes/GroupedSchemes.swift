// Registration list for the grouped schemes (KIVI: per-channel keys over token groups, residual window).
enum GroupedSchemes {
    static var all: [any KVScheme] { KIVIScheme.all + KIVIMixScheme.all }
}
