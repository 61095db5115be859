package kraft.interop;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Parsed `--name value` and `--flag` arguments of one subcommand.
 *
 * Each subcommand declares which names take a value and which are flags; anything else is a
 * usage error, so a typo in a test fails loudly instead of silently using a default.
 */
final class Options {
    /** The operator's mistake, not the cluster's: exit code 2. */
    static final class UsageError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message);
        }
    }

    private final Map<String, List<String>> values = new HashMap<>();
    private final Set<String> flagsSeen;

    private Options(Set<String> flagsSeen) {
        this.flagsSeen = flagsSeen;
    }

    static Options parse(String[] args, int start, Set<String> valueNames, Set<String> flagNames) {
        Options options = new Options(new HashSet<>());
        for (int i = start; i < args.length; i++) {
            String name = args[i];
            if (flagNames.contains(name)) {
                options.flagsSeen.add(name);
            } else if (valueNames.contains(name)) {
                if (i + 1 >= args.length) throw new UsageError(name + " needs a value");
                options.values.computeIfAbsent(name, k -> new ArrayList<>()).add(args[++i]);
            } else {
                throw new UsageError("unknown argument " + name + "; expected one of "
                        + valueNames + " or flags " + flagNames);
            }
        }
        return options;
    }

    boolean flag(String name) {
        return flagsSeen.contains(name);
    }

    String get(String name, String fallback) {
        List<String> found = values.get(name);
        return found == null ? fallback : found.get(found.size() - 1);
    }

    String required(String name) {
        String value = get(name, null);
        if (value == null) throw new UsageError(name + " is required");
        return value;
    }

    int intValue(String name, int fallback) {
        String value = get(name, null);
        if (value == null) return fallback;
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new UsageError(name + " expects an integer, got " + value);
        }
    }

    boolean has(String name) {
        return values.containsKey(name);
    }

    /** Repeated `--name key=value` options as an ordered map. */
    Map<String, String> pairs(String name) {
        Map<String, String> result = new LinkedHashMap<>();
        for (String pair : values.getOrDefault(name, List.of())) {
            int equals = pair.indexOf('=');
            if (equals <= 0) throw new UsageError(name + " expects key=value, got " + pair);
            result.put(pair.substring(0, equals), pair.substring(equals + 1));
        }
        return result;
    }

    /** Client configs: the command's defaults overlaid by the caller's `--property k=v`. */
    Properties clientProperties(Map<String, Object> defaults) {
        Properties properties = new Properties();
        properties.putAll(defaults);
        properties.putAll(pairs("--property"));
        return properties;
    }
}
