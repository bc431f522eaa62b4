"""Loading any node by kind and id, through the request's DataLoaders (so a page of them is
one batch per kind): for `node`/`nodes` and for an event's subject."""

from __future__ import annotations

from cityexchange.schema.adoptions import Adoption
from cityexchange.schema.cities import City, Person
from cityexchange.schema.comments import Comment
from cityexchange.schema.context import Info
from cityexchange.schema.organisations import Organisation
from cityexchange.schema.problems import Problem
from cityexchange.schema.relay import Node
from cityexchange.schema.solutions import Solution


async def load_node(info: Info, kind: str, id: str) -> Node | None:
    """The node `kind:id`, or None if there is none (any other kind is looked up as a
    comment, which finds nothing)."""
    loaders = info.context.loaders
    if kind == "City":
        city = await loaders.city_by_slug.load(id)
        return City.from_domain(city) if city else None
    if kind == "Person":
        person = await loaders.person_by_id.load(id)
        return Person.from_domain(person) if person else None
    if kind == "Problem":
        problem = await loaders.problem_by_id.load(id)
        return Problem.from_domain(problem) if problem else None
    if kind == "Solution":
        solution = await loaders.solution_by_id.load(id)
        return Solution.from_domain(solution) if solution else None
    if kind == "Organisation":
        organisation = await info.context.organisation_loaders.organisation_by_id.load(id)
        return Organisation.from_domain(organisation) if organisation else None
    if kind == "Adoption":
        adoption = await loaders.adoption_by_id.load(id)
        return Adoption.from_domain(adoption) if adoption else None
    comment = await loaders.comment_by_id.load(id)
    return Comment.from_domain(comment) if comment else None
