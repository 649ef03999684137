# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pgpass
short_description: The password for a server from a libpq password file on the Ansible side
description:
  - Reads a password file (libpq's C(.pgpass) format, C(host:port:database:user:password) with C(*) wildcards and
    C(\:) escapes) where Ansible runs, and returns the password of the first line that matches.
  - Made for AWX / Automation Platform, whose custom credential types can only hand a password to a job as a file
    (a C(file) injector) or an environment variable in the execution environment, while the modules run on the
    persistent C(consolidation_controller) host, which cannot read that file. The password then travels as the
    connection's C(password) option, which every module keeps out of its output (C(no_log)). See C(examples/aap).
  - The database field of a matching line must be C(*) (a run opens many databases).
options:
  _terms:
    description: Path of the password file.
    required: true
    type: path
  host:
    description: Server host name, as in the connection dictionary.
    required: true
    type: str
  port:
    description: Server port.
    type: int
    default: 5432
  user:
    description: Login role.
    required: true
    type: str
"""

EXAMPLES = r"""
- name: Source connection from the AWX credential "ClassifiedAds source server" (examples/aap)
  ansible.builtin.set_fact:
    consolidation_source:
      host: "{{ lookup('ansible.builtin.env', 'CLASSIFIEDADS_SOURCE_HOST') }}"
      user: "{{ lookup('ansible.builtin.env', 'CLASSIFIEDADS_SOURCE_USER') }}"
      password: >-
        {{ lookup('classifiedads.consolidation.pgpass',
                  lookup('ansible.builtin.env', 'CLASSIFIEDADS_SOURCE_PGPASSFILE'),
                  host=lookup('ansible.builtin.env', 'CLASSIFIEDADS_SOURCE_HOST'),
                  user=lookup('ansible.builtin.env', 'CLASSIFIEDADS_SOURCE_USER')) }}
  no_log: true
"""

RETURN = r"""
_raw:
  description: The password (one element).
  type: list
  elements: str
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgpass import find_password


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleError("pgpass takes exactly one password file, got %d" % len(terms))
        path = terms[0]
        host, port, user = self.get_option("host"), self.get_option("port"), self.get_option("user")
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            raise AnsibleError("Cannot read the password file %s: %s. In AWX, attach the credential that writes it "
                               "to the job template." % (path, exc.strerror)) from None
        password = find_password(text, host, port, user)
        if password is None:
            raise AnsibleError("The password file %s has no line for %s@%s:%s (database field '*'); check the "
                               "credential's host, port and username." % (path, user, host, port))
        return [password]
