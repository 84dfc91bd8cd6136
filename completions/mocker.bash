# bash completion for mocker: verbs, their options, container names, images.
#   source completions/mocker.bash
# or copy it to /usr/share/bash-completion/completions/mocker.
# (mocker-fetch, mocker-bundle, mocker-runc and mocker-net complete through
# argcomplete: eval "$(register-python-argcomplete mocker-fetch)".)

_mocker_containers() {
    # $1: "all" for every container, else only running ones
    local all=
    [ "$1" = all ] && all=-a
    mocker ps $all --format '{{.Names}}' 2>/dev/null
}

_mocker_images() {
    mocker images 2>/dev/null | awk 'NR > 1 && $1 != "<none>" { print $1 ":" $2 }'
}

_mocker_logged_in() {
    # the registries named in Docker's auth file
    local config=${DOCKER_CONFIG:-$HOME/.docker}/config.json
    [ -r "$config" ] && python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1])).get("auths", {})))' "$config" 2>/dev/null
}

_mocker() {
    local cur prev verb i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}

    local verbs="run ps logs exec stop kill start restart rm inspect port pull images rmi image login logout help version"
    verb=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -v|--verbose) ;;
            *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [ -z "$verb" ]; then
        COMPREPLY=($(compgen -W "$verbs -v --verbose --help --version" -- "$cur"))
        return
    fi

    local options= words=
    case $verb in
        run)
            # BEGIN run options: words (scripts/gen-runopts, from mocker_common/runopts.py)
            run_values="--name -e --env --env-file -p --publish -v --volume -w --workdir -u --user --entrypoint -h --hostname --network --net -m --memory --cpus --pids-limit --device --stop-signal"
            run_options="-d --detach -i --interactive -t --tty --rm --name -e --env --env-file -p --publish -v --volume -w --workdir -u --user --entrypoint -h --hostname --network -m --memory --cpus --pids-limit --device --read-only --init --stop-signal --help"
            # END run options
            case $prev in
                --network|--net) COMPREPLY=($(compgen -W "bridge none host" -- "$cur")); return ;;
                -v|--volume|--env-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --stop-signal) COMPREPLY=($(compgen -W "SIGTERM SIGINT SIGQUIT SIGHUP SIGUSR1 SIGUSR2 SIGKILL" -- "$cur")); return ;;
            esac
            # any other option's value: nothing to offer
            [[ " $run_values " == *" $prev "* ]] && return
            options=$run_options
            words=$(_mocker_images) ;;
        ps) options="-a --all -q --quiet --no-trunc --format --help" ;;
        logs) options="-f --follow -n --tail --help"; words=$(_mocker_containers all) ;;
        exec) options="-i --interactive -t --tty -d --detach -u --user -e --env -w --workdir --help"
              words=$(_mocker_containers) ;;
        stop|restart) options="-t --time --help"; words=$(_mocker_containers) ;;
        kill) [ "$prev" = -s ] || [ "$prev" = --signal ] && {
                  COMPREPLY=($(compgen -W "KILL TERM INT HUP USR1 USR2 QUIT" -- "$cur")); return; }
              options="-s --signal --help"; words=$(_mocker_containers) ;;
        start) options="--help"; words=$(_mocker_containers all) ;;
        rm) options="-f --force --help"; words=$(_mocker_containers all) ;;
        inspect) options="-f --format --help"; words=$(_mocker_containers all) ;;
        port) options="--help"; words=$(_mocker_containers all) ;;
        pull) options="--platform --creds --authfile --insecure --mirror -q --quiet --help" ;;
        images) options="--json --help" ;;
        rmi) options="--help"; words=$(_mocker_images) ;;
        image) words="ls rm prune" ;;
        login) [ "$prev" = -u ] || [ "$prev" = --username ] && return
               options="-u --username -p --password --password-stdin --insecure --help"
               words=$(_mocker_logged_in) ;;
        logout) options="--help"; words=$(_mocker_logged_in) ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}

complete -F _mocker mocker
