# SPDX-License-Identifier: Apache-2.0
# fish completion for claudegate. The candidates and their descriptions come
# from the binary itself (`claudegate __complete -- WORD…`, built from its
# CLI11 definition); see apps/claudegate/cmd_complete.hpp.

function __claudegate_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l lines ($tokens[1] __complete -- $tokens[2..-1] "$current" 2>/dev/null)
    switch "$lines[1]"
        case :files
            __fish_complete_path "$current"
        case :dirs
            __fish_complete_directories "$current"
        case '*'
            printf '%s\n' $lines[2..-1]
    end
end

complete -c claudegate -f -a '(__claudegate_complete)'
