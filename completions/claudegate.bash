# SPDX-License-Identifier: Apache-2.0
# bash completion for claudegate. The candidates come from the binary itself
# (`claudegate __complete -- WORD…`, built from its CLI11 definition), so
# this script never goes stale; see apps/claudegate/cmd_complete.hpp.

_claudegate() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local -a lines
    mapfile -t lines < <(command "${COMP_WORDS[0]}" __complete -- \
        "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    [[ $cur == = ]] && cur=
    COMPREPLY=()
    case ${lines[0]} in
    :files)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        ;;
    :dirs)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        ;;
    *)
        local line
        for line in "${lines[@]:1}"; do
            COMPREPLY+=("${line%%$'\t'*}")
        done
        ;;
    esac
}

complete -F _claudegate claudegate
